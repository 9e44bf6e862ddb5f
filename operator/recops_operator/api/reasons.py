"""Reasons of the conditions, phases and events of RecModels, TrainingRuns and Rollouts:
named constants, CamelCase as Kubernetes wants, each defined once, since a user greps
``kubectl describe`` for them whichever kind shows one."""

from __future__ import annotations

from recops_operator.api.recmodel import RecModelPhase

# Every kind.
INVALID_SPEC = "InvalidSpec"
NO_STABLE_VERSION = "NoStableVersion"
TRAFFIC_ROUTING_NOT_APPLIED = "TrafficRoutingNotApplied"

# RecModels and TrainingRuns.
VALID = "Valid"
TRAINED = "Trained"
TRAINING_FAILED = "TrainingFailed"
ENGINES_BUILT = "EnginesBuilt"

# RecModel conditions.
TRAINING = "Training"
NOT_TRAINED = "NotTrained"
ENGINES_MISSING = "EnginesMissing"
DEPLOYMENTS_NOT_READY = "DeploymentsNotReady"
SERVING = "Serving"
REPLICAS_UNAVAILABLE = "ReplicasUnavailable"
ALL_REPLICAS_AVAILABLE = "AllReplicasAvailable"
ROLLOUT_ACTIVE = "RolloutActive"
NO_ACTIVE_ROLLOUT = "NoActiveRollout"

# RecModel events.
STABLE_VERSION = "StableVersion"
CANDIDATE_VERSION = "CandidateVersion"
PROMOTED = "Promoted"
SCALED_DOWN = "ScaledDown"
TRAINING_STARTED = "TrainingStarted"
RETRAINING_SKIPPED = "RetrainingSkipped"
NEW_INTERACTIONS_UNKNOWN = "NewInteractionsUnknown"
DRIFT_DETECTED = "DriftDetected"


def phase_changed(phase: RecModelPhase) -> str:
    """The event of a RecModel entering ``phase`` (``PhaseServing``, ``PhaseRollingOut``...)."""
    return f"Phase{phase.value}"


# TrainingRun conditions, phases and events.
SUBMITTING = "Submitting"
RETRYING = "Retrying"
JOB_CREATED = "JobCreated"
JOB_STARTED = "JobStarted"
JOB_RUNNING = "JobRunning"
JOB_FAILED = "JobFailed"
JOB_SUCCEEDED = "JobSucceeded"
WAITING_FOR_MLFLOW = "WaitingForMlflow"
MLFLOW_RUN_NOT_FOUND = "MlflowRunNotFound"
GATE_PASSED = "GatePassed"
GATE_REJECTED = "GateRejected"
NO_MODEL_VERSION = "NoModelVersion"
COMPILING = "Compiling"
COMPILE_FAILED = "CompileFailed"
ENGINE_MANIFEST_MISSING = "EngineManifestMissing"
SUCCEEDED = "Succeeded"
RECMODEL_NOT_READY = "RecModelNotReady"

# Rollout decisions and conditions (the engine's).
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
RECMODEL_NOT_FOUND = "RecModelNotFound"
RECMODEL_INVALID = "RecModelInvalid"
GRPC_ROUTE_CONFLICT = "GRPCRouteConflict"
CANDIDATE_IS_STABLE = "CandidateIsStable"
CANDIDATE_NOT_SERVED = "CandidateNotServed"
STICKY_NOT_APPLIED = "StickyNotApplied"
CHAMPION_ALIAS_FAILED = "ChampionAliasFailed"
# The one-machine driver's: the runtime's admin API did not answer.
RUNTIME_UNREACHABLE = "RuntimeUnreachable"
