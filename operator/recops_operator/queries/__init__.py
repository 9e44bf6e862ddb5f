"""The PromQL that rollouts and retraining share, over the runtime's exposed series.

Pure text: the Prometheus client runs the queries, the rollout's Prometheus provider and
the retraining signals decide what the answers mean.
"""
