"""The runtime's Prometheus metric names and labels (the team's shared contract)."""

from __future__ import annotations

REQUESTS = "recops_requests_total"
LATENCY = "recops_request_latency_seconds"
RECOMMENDATIONS = "recops_recommendations_total"
ONLINE_HITS = "recops_online_hits_total"
FEEDBACK_EVENTS = "recops_feedback_events_total"
VERSION_LABEL = "version"
# Target labels Prometheus attaches to a serving pod's series: the Prometheus operator adds
# the namespace, and the ServiceMonitor copies the Service's recops.io/recmodel label
# (sanitized). Model versions repeat across RecModels ("3" of one registered model is not
# "3" of another), so every query about a RecModel's versions selects on both.
NAMESPACE_LABEL = "namespace"
RECMODEL_LABEL = "recops_io_recmodel"
CODE_LABEL = "code"
EVENT_LABEL = "event"

# gRPC codes a caller causes: a bad request is not the candidate's failure.
CLIENT_CODES = frozenset({"OK", "INVALID_ARGUMENT", "NOT_FOUND", "CANCELLED"})
CLICK_EVENT = "click"
