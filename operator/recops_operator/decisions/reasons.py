"""Reasons of RecModel and TrainingRun conditions, phases and events: named constants,
CamelCase as Kubernetes wants. The Rollout's are in ``rollout/reasons.py``."""

from __future__ import annotations

from recops_operator.api.recmodel import RecModelPhase

# Both kinds.
VALID = "Valid"
INVALID_SPEC = "InvalidSpec"
TRAINED = "Trained"
TRAINING_FAILED = "TrainingFailed"
ENGINES_BUILT = "EnginesBuilt"

# RecModel conditions.
TRAINING = "Training"
NOT_TRAINED = "NotTrained"
NO_STABLE_VERSION = "NoStableVersion"
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
TRAFFIC_ROUTING_NOT_APPLIED = "TrafficRoutingNotApplied"


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
