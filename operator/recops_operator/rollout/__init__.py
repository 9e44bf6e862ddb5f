"""Progressive delivery's pure decision engine: no I/O, an import-linter contract keeps it so.

The engine (`engine.decide`) turns a policy, the rollout's status, the time and fresh
measurements into the next action. The operator's Rollout controller
(``controllers/rollout.py``) and the one-machine `recops rollout` (``local_rollout/``)
both drive it, measuring with ``analysis_providers/``, so a canary behaves the same on a
laptop and on a cluster.
"""
