"""The runtime's series as the rollout queries them (exposed names; the shared contract
``recops_contracts.metrics`` defines them)."""

from __future__ import annotations

from recops_contracts import metrics as _m
from recops_contracts.feedback import CLICK
from recops_contracts.metrics import (
    CLIENT_CODES as CLIENT_CODES,
    CODE_LABEL as CODE_LABEL,
    EVENT_LABEL as EVENT_LABEL,
    NAMESPACE_LABEL as NAMESPACE_LABEL,
    RECMODEL_LABEL as RECMODEL_LABEL,
    STATISTIC_LABEL as STATISTIC_LABEL,
    VERSION_LABEL as VERSION_LABEL,
)

REQUESTS = _m.total(_m.REQUESTS)
LATENCY = _m.LATENCY
RECOMMENDATIONS = _m.total(_m.RECOMMENDATIONS)
ONLINE_HITS = _m.total(_m.ONLINE_HITS)
FEEDBACK_EVENTS = _m.total(_m.FEEDBACK_EVENTS)
DRIFT = _m.DRIFT
DRIFT_TRIGGERED = _m.DRIFT_TRIGGERED
DRIFT_WINDOWS = _m.total(_m.DRIFT_WINDOWS)
CLICK_EVENT = CLICK
