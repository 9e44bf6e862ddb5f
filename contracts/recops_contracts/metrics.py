"""The runtime's Prometheus series, which rollouts, alerts and dashboards query.

Families are named as registered; prometheus_client exposes a counter ``x`` as
``x_total`` (:func:`total`). The runtime registers them, the operator's rollout analysis
and retraining signals query them.
"""

from __future__ import annotations

# Families and their labels.
REQUESTS = "recops_requests"  # counter {version, target, code}: by gRPC status name
LATENCY = "recops_request_latency_seconds"  # histogram {version, target}: server side
BATCH_SIZE = "recops_batch_size"  # histogram {version, target}: requests per engine call
QUEUE_DEPTH = "recops_queue_depth"  # gauge {version}: requests waiting for the engine
RECOMMENDATIONS = "recops_recommendations"  # counter {version, target}: lists served
FALLBACKS = "recops_fallbacks"  # counter {version, reason}: popularity fallbacks
UNKNOWN_ITEMS = "recops_unknown_items"  # counter {version}: history items dropped
FEEDBACK_EVENTS = "recops_feedback_events"  # counter {version, event}
# counter {version}: clicks on an item the same request recommended; online hit rate =
# hits / recommendations.
ONLINE_HITS = "recops_online_hits"
MODEL_INFO = "recops_model_info"  # gauge {version, target, model_version}: 1 per loaded version
# Drift from the training data (``recops_contracts.drift``), per full window of requests:
DRIFT = "recops_drift"  # gauge {version, statistic}: the last full window's value
DRIFT_TRIGGERED = "recops_drift_triggered"  # gauge {version, statistic}: 1 after the run
DRIFT_WINDOWS = "recops_drift_windows"  # counter {version}: full windows judged
# counter {version, result}: per-user top-k cache lookups, result "hit" or "miss" (only
# with the cache on); hit rate = hits / (hits + misses).
TOPK_CACHE = "recops_topk_cache_lookups"
# counter {event, reason}: feedback not attributed to a recommendation, so never an online
# hit and, by default, not training data. reason: "no_request_id"; "unknown_request" (no
# kept served list matches: evicted by its byte budget, expired, or never served here);
# "other_user" (the list was served to another user); "outside_window" (after the
# attribution window).
FEEDBACK_UNATTRIBUTED = "recops_feedback_unattributed"
# gauges {store}: the estimated bytes a per-user store holds ("served", "history",
# "topk_cache") and its budget.
STORE_BYTES = "recops_store_bytes"
STORE_BUDGET = "recops_store_budget_bytes"

VERSION_LABEL = "version"
TARGET_LABEL = "target"
CODE_LABEL = "code"
EVENT_LABEL = "event"
REASON_LABEL = "reason"
MODEL_VERSION_LABEL = "model_version"
STATISTIC_LABEL = "statistic"
RESULT_LABEL = "result"
STORE_LABEL = "store"
# The version label of requests refused before a version was chosen.
UNVERSIONED = "none"

# Target labels Prometheus attaches to a serving pod's series: the Prometheus operator adds
# the namespace, and the ServiceMonitor copies the Service's recops.io/recmodel label
# (sanitized). Model versions repeat across RecModels ("3" of one registered model is not
# "3" of another), so every query about a RecModel's versions selects on both.
NAMESPACE_LABEL = "namespace"
RECMODEL_LABEL = "recops_io_recmodel"

# gRPC codes a caller causes: a bad request is not the candidate's failure.
CLIENT_CODES = frozenset({"OK", "INVALID_ARGUMENT", "NOT_FOUND", "CANCELLED"})


def total(counter: str) -> str:
    """The exposed name of a counter family."""
    return f"{counter}_total"
