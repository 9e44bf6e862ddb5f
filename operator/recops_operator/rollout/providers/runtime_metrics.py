"""The runtime's Prometheus metric names and labels (the team's shared contract)."""

from __future__ import annotations

REQUESTS = "recops_requests_total"
LATENCY = "recops_request_latency_seconds"
RECOMMENDATIONS = "recops_recommendations_total"
ONLINE_HITS = "recops_online_hits_total"
FEEDBACK_EVENTS = "recops_feedback_events_total"
VERSION_LABEL = "version"
CODE_LABEL = "code"
EVENT_LABEL = "event"

# gRPC codes a caller causes: a bad request is not the candidate's failure.
CLIENT_CODES = frozenset({"OK", "INVALID_ARGUMENT", "NOT_FOUND", "CANCELLED"})
CLICK_EVENT = "click"
