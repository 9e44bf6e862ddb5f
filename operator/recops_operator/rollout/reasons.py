"""Reasons of rollout decisions and conditions: named constants, CamelCase as Kubernetes wants."""

from __future__ import annotations

WEIGHT_SET = "WeightSet"
CANDIDATE_NOT_READY = "CandidateNotReady"
PAUSE_STEP = "PauseStep"
PAUSE_ENDED = "PauseEnded"
PAUSED = "Paused"
PAUSED_UNTIL_PROMOTED = "PausedUntilPromoted"
ANALYSIS_RUNNING = "AnalysisRunning"
ANALYSIS_PASSED = "AnalysisPassed"
ANALYSIS_FAILED = "AnalysisFailed"
MEASUREMENT_INCONCLUSIVE = "MeasurementInconclusive"
INCONCLUSIVE_LIMIT_EXCEEDED = "InconclusiveLimitExceeded"
METRICS_UNAVAILABLE = "MetricsUnavailable"
ALL_STEPS_COMPLETED = "AllStepsCompleted"
PROMOTED_BY_USER = "PromotedByUser"
ABORTED_BY_USER = "AbortedByUser"
RETRIED = "Retried"
RESUMED_BY_RETRY = "ResumedByRetry"
RETRY_BLOCKED_BY_ABORT = "RetryBlockedByAbort"

# Pauses only a person ends (promote, abort or retry); the engine never resumes them itself.
HUMAN_PAUSES = frozenset({PAUSED_UNTIL_PROMOTED, INCONCLUSIVE_LIMIT_EXCEEDED})
ROLLOUT_TIMED_OUT = "RolloutTimedOut"
INTERRUPTED = "Interrupted"

# The Rollout controller's: its spec, what holds a rollout Pending, and its events.
SPEC_VALID = "SpecValid"
INVALID_SPEC = "InvalidSpec"
RECMODEL_NOT_FOUND = "RecModelNotFound"
RECMODEL_INVALID = "RecModelInvalid"
GRPC_ROUTE_CONFLICT = "GRPCRouteConflict"
NO_STABLE_VERSION = "NoStableVersion"
CANDIDATE_IS_STABLE = "CandidateIsStable"
CANDIDATE_NOT_SERVED = "CandidateNotServed"
STICKY_NOT_APPLIED = "StickyNotApplied"
TRAFFIC_ROUTING_NOT_APPLIED = "TrafficRoutingNotApplied"
CHAMPION_ALIAS_FAILED = "ChampionAliasFailed"
# The one-machine driver's: the runtime's admin API did not answer.
RUNTIME_UNREACHABLE = "RuntimeUnreachable"
