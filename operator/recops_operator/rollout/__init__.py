"""Progressive delivery: one pure decision engine, analysis providers and two drivers.

The engine (`engine.decide`) turns a policy, the rollout's status, the time and fresh
measurements into the next action. The operator's Rollout controller and the one-machine
`recops rollout` command both drive it, so a canary behaves the same on a laptop and on a
cluster.
"""
