"""What the trainer writes to MLflow and the operator reads back: tag and metric names.

The trainer tags its run with ``recops.training_run = <namespace>/<name>``, logs the
validation metrics per epoch and the test metrics once, registers the model and tags the
model version with the gate's verdict; the operator finds that run over MLflow's REST API
and reads those names back.
"""

from __future__ import annotations

from typing import Literal

from recops_contracts.training import EvaluationProtocol

# Run tags (the gate's tags are also set on the registered model version).
TAG_TRAINING_RUN = "recops.training_run"
TAG_DATASET_HASH = "recops.dataset_hash"
# The data set the serving feedback was added to (a snapshot with lineage), and how many
# feedback interactions that added.
TAG_PARENT_DATASET_HASH = "recops.parent_dataset_hash"
TAG_FEEDBACK_INTERACTIONS = "recops.feedback_interactions"
TAG_PROTOCOL = "recops.protocol"
TAG_REGISTERED_MODEL = "recops.registered_model"
TAG_MODEL_VERSION = "recops.model_version"
TAG_GATE = "recops.gate"
TAG_GATE_REASON = "recops.gate_reason"
# The run's output folder (``recops train --resume <run id>`` finds its checkpoint there),
# the training backend (local or ray) and whether the data was the synthetic generator's.
TAG_OUTPUT = "recops.output"
TAG_BACKEND = "recops.backend"
TAG_SYNTHETIC = "recops.synthetic"
# train, tune (a tuning run's parent) or trial (one of its children); the recops package
# version that trained.
TAG_MODE = "recops.mode"
TAG_CODE_VERSION = "recops.version"

# The registered model's aliases: ``champion`` is the version that serves (the gate
# compares a new run with it, a promotion moves it), ``candidate`` the last version that
# passed the gate.
ALIAS_CHAMPION = "champion"
ALIAS_CANDIDATE = "candidate"

# The gate's verdict, the value of ``TAG_GATE``: a candidate for rollout, or rejected.
Verdict = Literal["candidate", "rejected"]
VERDICT_CANDIDATE: Verdict = "candidate"
VERDICT_REJECTED: Verdict = "rejected"

Stage = Literal["val", "test"]


def metric_key(stage: Stage, protocol: EvaluationProtocol | str, metric: str) -> str:
    """The MLflow name of an offline metric: ``test_sampled_ndcg_at_10``,
    ``val_full_hr_at_10``; the sampled validation metrics, which the loop and Ray Tune
    report every epoch, keep the short ``val_ndcg_at_10``."""
    clean = metric.replace("@", "_at_")
    if stage == "val" and protocol == EvaluationProtocol.SAMPLED:
        return f"val_{clean}"
    return f"{stage}_{EvaluationProtocol(protocol).value}_{clean}"


# What a TrainingRun's status shows of its run.
METRICS = (
    metric_key("test", EvaluationProtocol.SAMPLED, "ndcg@10"),
    metric_key("test", EvaluationProtocol.SAMPLED, "hr@10"),
    metric_key("test", EvaluationProtocol.FULL, "ndcg@10"),
    metric_key("test", EvaluationProtocol.FULL, "hr@10"),
    metric_key("val", EvaluationProtocol.SAMPLED, "ndcg@10"),
)
