"""What the training loop carries from epoch to epoch and hands its hooks: the resumable
state, each epoch's result, and how a process takes part in data-parallel training."""

from __future__ import annotations

import io
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import torch

from recops_contracts.training import EvaluationProtocol
from recops_trainer.model.network import SSEPT

# The validation metric early stopping watches, under TrainingSettings.monitor's protocol.
MONITORED_METRIC = "ndcg@10"
# Where an epoch's time goes (EpochResult.phases), in seconds; "optimizer" includes the
# gradient all-reduce of data-parallel training.
PHASES = ("sample", "forward", "backward", "optimizer")


@dataclass
class Distributed:
    """How this process takes part in data-parallel training (one process by default)."""

    rank: int = 0
    world: int = 1
    sync_gradients: Callable[[torch.nn.Module], None] | None = None
    broadcast: Callable[[list[float]], list[float]] | None = None
    device: torch.device | None = None  # None: training_device()

    @property
    def is_main(self) -> bool:
        return self.rank == 0


@dataclass
class TrainState:
    """Everything needed to continue training where it stopped."""

    epoch: int = 0
    model_state: dict[str, torch.Tensor] = field(default_factory=dict)
    optimizer_state: dict[str, Any] = field(default_factory=dict)
    sampler_state: dict[str, Any] = field(default_factory=dict)
    torch_rng: torch.Tensor | None = None  # dropout draws, so a resumed run continues exactly
    best_score: float = -math.inf
    best_epoch: int = 0
    # The protocol best_score was read under (TrainingSettings.monitor).
    monitor: str = EvaluationProtocol.SAMPLED.value
    best_model_state: dict[str, torch.Tensor] = field(default_factory=dict)
    bad_evals: int = 0
    stopped_early: bool = False
    decays: int = 0  # learning-rate decays taken at plateaus (TrainingSettings.lr_decays)
    history: list[dict[str, Any]] = field(default_factory=list)

    def save(self, path: Path) -> None:
        buffer = io.BytesIO()
        torch.save(self.__dict__, buffer)
        Path(path).write_bytes(buffer.getvalue())

    @classmethod
    def load(cls, path: Path) -> TrainState:
        # Tensors and primitives only: unpickling arbitrary objects would run code from
        # whoever could write the checkpoint folder (a shared volume).
        data = torch.load(Path(path), map_location="cpu", weights_only=True)
        return cls(**data)


@dataclass
class EpochResult:
    epoch: int
    loss: float
    seconds: float
    validation: dict[str, dict[str, Any]] | None = None
    improved: bool = False
    final: bool = False  # no epoch follows (budget, time limit or early stop)
    # Seconds spent per phase (PHASES). On a GPU the split is indicative only: kernels run
    # asynchronously, so a phase's time can show up in the next synchronising one.
    phases: dict[str, float] = field(default_factory=dict)
    sequences: int = 0  # training rows this worker read this epoch

    def monitored(self, protocol: EvaluationProtocol) -> float | None:
        if self.validation is None:
            return None
        return float(self.validation[protocol.value][MONITORED_METRIC])


class Hook(Protocol):
    def __call__(self, result: EpochResult, state: TrainState, model: SSEPT) -> None: ...
