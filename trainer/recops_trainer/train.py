"""The training loop: one function for the plain process and for every Ray Train worker.

``fit`` trains with early stopping on validation and calls hooks after every epoch; the
hooks report (log lines, progress bar, MLflow, ``ray.train.report``) and checkpoint.
Data parallelism is injected through ``Distributed``: each worker samples its own shard of
users, gradients are averaged before every step, and validation runs on rank 0 only, its
verdict shared with the others so that every worker stops at the same epoch.
"""

from __future__ import annotations

import io
import logging
import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
from torch import Tensor

from recops_trainer.config import (
    EvaluationProtocol,
    LossName,
    ModelHyperparameters,
    Precision,
    TrainingSettings,
)
from recops_trainer.evaluate import Stage, evaluate
from recops_trainer.losses import full_softmax_loss, sequence_loss
from recops_trainer.model import SSEPT, ModelShape
from recops_trainer.sampler import Batch, TrainSampler
from recops_trainer.split import Split

log = logging.getLogger("recops.train")

# The validation metric early stopping watches, under TrainingSettings.monitor's protocol.
MONITORED_METRIC = "ndcg@10"
# Length groups per batch (see _accumulate_gradients).
LENGTH_GROUPS = 8
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
        data = torch.load(Path(path), map_location="cpu", weights_only=False)
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

    def monitored(self, protocol: EvaluationProtocol) -> float | None:
        if self.validation is None:
            return None
        return float(self.validation[protocol.value][MONITORED_METRIC])


class Hook(Protocol):
    def __call__(self, result: EpochResult, state: TrainState, model: SSEPT) -> None: ...


def build_model(split: Split, hp: ModelHyperparameters) -> SSEPT:
    shape = ModelShape(
        num_users=split.num_users,
        num_items=split.num_items,
        maxlen=hp.maxlen,
        item_dim=hp.item_dim,
        user_dim=hp.effective_user_dim,
        num_blocks=hp.num_blocks,
        num_heads=hp.num_heads,
        dropout=hp.dropout,
    )
    return SSEPT(shape)


def training_device() -> torch.device:
    """CUDA when this process sees a GPU (Ray gives each GPU worker its own), else the CPU.

    ``RECOPS_DEVICE=cpu`` keeps training on the CPU on a machine that has a GPU.
    """
    wanted = os.environ.get("RECOPS_DEVICE", "auto")
    if wanted == "cpu" or not torch.cuda.is_available():
        return torch.device("cpu")
    return torch.device("cuda")


def _on_cpu(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A copy of a state dict in host memory: checkpoints load anywhere, and later steps
    cannot change it."""
    return {k: v.detach().to("cpu", copy=True) for k, v in state.items()}


def model_scorer(
    model: SSEPT, batch_size: int = 256, group_size: int = 64
) -> Callable[[Any, Any], Any]:
    """The evaluation harness's scorer for a torch model (eval mode, no gradients).

    Rows are scored in groups of ``group_size`` of similar history length, each with its
    padding columns trimmed (histories are left-padded, and padding is masked everywhere):
    the same scores for less attention compute, as in training (``_accumulate_gradients``).
    """

    def score(users: np.ndarray, history: np.ndarray) -> np.ndarray:
        was_training = model.training
        device = next(model.parameters()).device
        lengths = (history != 0).sum(1)
        out = np.empty((len(users), model.shape.num_items + 1), dtype=np.float32)
        model.eval()
        try:
            with torch.no_grad():
                for start in range(0, len(users), batch_size):
                    chunk = np.arange(start, min(start + batch_size, len(users)))
                    chunk = chunk[np.argsort(lengths[chunk], kind="stable")]
                    for rows in np.array_split(chunk, -(-len(chunk) // group_size)):
                        length = max(1, int(lengths[rows].max()))
                        out[rows] = (
                            model(
                                torch.from_numpy(users[rows]).to(device),
                                torch.from_numpy(history[rows, -length:]).to(device),
                            )
                            .cpu()
                            .numpy()
                        )
        finally:
            model.train(was_training)
        return out

    return score


def validate(split: Split, model: SSEPT, settings: TrainingSettings, seed: int) -> dict[str, Any]:
    return evaluate(
        split,
        model_scorer(model),
        maxlen=model.shape.maxlen,
        stage=Stage.VALID,
        protocols=(EvaluationProtocol.SAMPLED, EvaluationProtocol.FULL),
        limit=settings.eval_users,
        seed=seed,
    )


def _shard(split: Split, dist: Distributed) -> np.ndarray | None:
    if dist.world == 1:
        return None
    return np.arange(1, split.num_users + 1)[dist.rank :: dist.world]


def _length_groups(batch: Batch, groups: int) -> list[tuple[np.ndarray, int]]:
    """Rows ordered by history length in ``groups`` slices, each with its longest length."""
    lengths = (batch.seq != 0).sum(1)
    order = np.argsort(lengths, kind="stable")
    out = []
    for rows in np.array_split(order, min(groups, len(order))):
        if len(rows):
            out.append((rows, max(1, int(lengths[rows].max()))))
    return out


def _accumulate_gradients(
    model: SSEPT,
    batch: Batch,
    hp: ModelHyperparameters,
    items: int,
    device: torch.device,
    phases: dict[str, float] | None = None,
    precision: Precision = Precision.FP32,
) -> float:
    """Backpropagate the batch loss; returns its value and adds the seconds of the forward
    and backward passes to ``phases``.

    Histories are left-padded, and most users have far fewer than ``maxlen`` items, so the
    batch is cut into length groups with their padding trimmed: the same loss and gradient
    (padding is masked everywhere) for much less attention compute.
    """
    pos_all = batch.pos != 0
    count = max(1, int(pos_all.sum()))
    total = 0.0
    forward = backward = 0.0
    for rows, length in _length_groups(batch, LENGTH_GROUPS):
        weight = int(pos_all[rows].sum()) / count
        if weight == 0:
            continue
        started = time.perf_counter()
        users = torch.from_numpy(batch.users[rows]).to(device)
        seq = torch.from_numpy(batch.seq[rows, -length:]).to(device)
        pos = torch.from_numpy(batch.pos[rows, -length:]).to(device)
        with _autocast(precision, device):
            if hp.loss == LossName.SOFTMAX:
                loss = _full_softmax(model, users, seq, pos) * weight
            else:
                neg = torch.from_numpy(batch.neg[rows, -length:]).to(device)
                candidates = torch.cat([pos.unsqueeze(-1), neg], dim=-1)
                logits = model.score_positions(
                    users,
                    seq,
                    candidates,
                    through_catalogue=scores_through_catalogue(candidates.shape[-1], items),
                ).float()
                mask = (pos != 0).to(logits.dtype)
                loss = sequence_loss(hp.loss, logits[..., 0], logits[..., 1:], mask, items)
                loss = loss * weight
        middle = time.perf_counter()
        torch.autograd.backward(loss)
        total += float(loss.detach())
        forward += middle - started
        backward += time.perf_counter() - middle
    if phases is not None:
        phases["forward"] = phases.get("forward", 0.0) + forward
        phases["backward"] = phases.get("backward", 0.0) + backward
    return total


# Scoring every item at a target position and picking K + 1 columns beats gathering K + 1
# output vectors once the catalogue is under about 80 times the candidates (measured on one
# CPU thread, 20,000 positions of width 128, forward and backward: 3,416 items break even
# near K = 40, 20,000 items near K = 250); 64 keeps the gather where it is unsure.
CATALOGUE_SCORING_RATIO = 64


def scores_through_catalogue(candidates: int, num_items: int) -> bool:
    """Whether ``candidates`` per position are cheaper picked from the whole catalogue's scores."""
    return num_items <= CATALOGUE_SCORING_RATIO * candidates


def _full_softmax(model: SSEPT, users: Tensor, seq: Tensor, pos: Tensor) -> Tensor:
    """Cross-entropy over the whole catalogue at the target positions only.

    Only those positions' hidden states are scored (``[N, item_dim] @ [item_dim, items]``),
    against the item table without its padding row. SSE-PT's user part of the output
    vector adds the same offset to every item of a position, so it cancels in the softmax
    (and its gradient is zero): the item part alone gives the exact loss.
    """
    hidden, _ = model.encode(users, seq)
    where = pos != 0
    states = hidden[where][:, : model.shape.item_dim]
    return full_softmax_loss(states, model.item_embedding.weight[1:], pos[where])


def fit(
    split: Split,
    hp: ModelHyperparameters,
    settings: TrainingSettings | None = None,
    *,
    hooks: Sequence[Hook] = (),
    resume: TrainState | None = None,
    dist: Distributed | None = None,
) -> tuple[SSEPT, TrainState]:
    """Train; returns the best-validation model (eval mode) and the final state."""
    settings = settings or TrainingSettings()
    dist = dist or Distributed()
    if settings.threads:
        torch.set_num_threads(settings.threads)
    torch.manual_seed(hp.seed)
    device = dist.device or training_device()
    model = build_model(split, hp).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=hp.learning_rate, betas=(0.9, 0.98))
    sse_user, sse_item = hp.effective_sse
    sampler = TrainSampler(
        split,
        hp.maxlen,
        sse_user=sse_user,
        sse_item=sse_item,
        negatives=hp.negatives if hp.loss.samples_negatives else 0,
        users=_shard(split, dist),
        seed=hp.seed * 1000 + dist.rank,
    )
    state = resume or TrainState()
    if resume is not None:
        model.load_state_dict(resume.model_state)
        optimizer.load_state_dict(resume.optimizer_state)
        sampler.restore(resume.sampler_state)
        if resume.torch_rng is not None:
            torch.set_rng_state(resume.torch_rng)
        _adopt_monitor(state, settings.monitor)
    state.monitor = settings.monitor.value
    # A run that stopped at a plateau and is resumed with decays left goes on from there.
    _decay_at_plateau(model, optimizer, state, settings)
    # Every worker takes the same number of steps (gradients are averaged each step), and
    # the global batch stays hp.batch_size whatever the worker count.
    eligible = sum(1 for s in split.train if len(s) > 1)
    steps = max(1, eligible // hp.batch_size)
    local_batch = max(1, hp.batch_size // dist.world)
    model.train()
    loop_started = time.perf_counter()
    state_elapsed = float(state.history[-1].get("elapsed", 0.0)) if state.history else 0.0
    deadline = None
    if settings.time_limit_minutes is not None:
        deadline = time.monotonic() + settings.time_limit_minutes * 60.0
    while state.epoch < hp.epochs and not state.stopped_early:
        started = time.perf_counter()
        total = 0.0
        phases = dict.fromkeys(PHASES, 0.0)
        for _ in range(steps):
            tick = time.perf_counter()
            batch = sampler.batch(local_batch)
            phases["sample"] += time.perf_counter() - tick
            optimizer.zero_grad(set_to_none=True)
            total += _accumulate_gradients(
                model, batch, hp, split.num_items, device, phases, settings.precision
            )
            tick = time.perf_counter()
            if dist.sync_gradients is not None:
                dist.sync_gradients(model)
            optimizer.step()
            phases["optimizer"] += time.perf_counter() - tick
        state.epoch += 1
        seconds = time.perf_counter() - started
        result = EpochResult(
            state.epoch, total / steps, seconds, phases={k: round(v, 3) for k, v in phases.items()}
        )
        out_of_time = _shared_flag(deadline is not None and time.monotonic() > deadline, dist)
        last = state.epoch >= hp.epochs or out_of_time
        if state.epoch % settings.eval_every == 0 or last:
            _validate_epoch(split, model, settings, hp.seed, state, result, dist)
            if not last:
                _decay_at_plateau(model, optimizer, state, settings)
        result.final = last or state.stopped_early
        state.model_state = _on_cpu(model.state_dict())
        state.optimizer_state = optimizer.state_dict()
        state.sampler_state = sampler.state()
        state.torch_rng = torch.get_rng_state()
        state.history.append(
            {
                "epoch": result.epoch,
                "loss": result.loss,
                "seconds": result.seconds,
                "phases": result.phases,
                # Wall time since the loop started, validations included: time to quality.
                "elapsed": round(time.perf_counter() - loop_started + state_elapsed, 3),
            }
            | ({"val": result.validation} if result.validation else {})
        )
        for hook in hooks:
            hook(result, state, model)
        if out_of_time:
            break
    if state.best_model_state:
        model.load_state_dict(state.best_model_state)
    # Evaluation, export and saving downstream all run on the CPU.
    model.to("cpu").eval()
    return model, state


def _adopt_monitor(state: TrainState, monitor: EvaluationProtocol) -> None:
    """A run resumed under another ``training.monitor``: the kept model stays, and its own
    validation score under the new protocol (from the history) is the one to beat."""
    if state.monitor == monitor.value:
        return
    kept = [row for row in state.history if row["epoch"] == state.best_epoch and "val" in row]
    state.best_score = float(kept[0]["val"][monitor.value][MONITORED_METRIC]) if kept else -math.inf
    state.bad_evals = 0
    state.stopped_early = False


def _decay_at_plateau(
    model: SSEPT, optimizer: torch.optim.Optimizer, state: TrainState, settings: TrainingSettings
) -> None:
    """At a plateau with decays left: the best model again, a smaller step, a fresh patience.

    Going back to the best weights rather than on from the last ones is what makes the
    smaller step pay: the epochs since the best one drifted on a too-large step.
    """
    if not state.stopped_early or state.decays >= settings.lr_decays or not state.best_model_state:
        return
    model.load_state_dict(state.best_model_state)
    for group in optimizer.param_groups:
        group["lr"] *= settings.lr_decay_factor
    state.decays += 1
    state.bad_evals = 0
    state.stopped_early = False
    log.info(
        "plateau at epoch %d: back to epoch %d, learning rate now %.2e (decay %d of %d)",
        state.epoch,
        state.best_epoch,
        optimizer.param_groups[0]["lr"],
        state.decays,
        settings.lr_decays,
    )


def _autocast(precision: Precision, device: torch.device) -> Any:
    """bfloat16 autocast of a forward pass when asked for; the backward pass follows the
    forward's dtypes (autocast's own advice: never wrap backward)."""
    return torch.autocast(
        device_type=device.type, dtype=torch.bfloat16, enabled=precision == Precision.BF16
    )


def _shared_flag(flag: bool, dist: Distributed) -> bool:
    """Rank 0's verdict, so that every worker leaves the loop at the same epoch."""
    if dist.broadcast is None:
        return flag
    return dist.broadcast([1.0 if flag else 0.0])[0] > 0.5


def _validate_epoch(
    split: Split,
    model: SSEPT,
    settings: TrainingSettings,
    seed: int,
    state: TrainState,
    result: EpochResult,
    dist: Distributed,
) -> None:
    score = -math.inf
    if dist.is_main:
        result.validation = validate(split, model, settings, seed)
        score = float(result.monitored(settings.monitor) or 0.0)
    if dist.broadcast is not None:
        score = dist.broadcast([score])[0]
    result.improved = score > state.best_score
    if result.improved:
        state.best_score = score
        state.best_epoch = result.epoch
        state.best_model_state = _on_cpu(model.state_dict())
        state.bad_evals = 0
    else:
        state.bad_evals += 1
        state.stopped_early = state.bad_evals >= settings.patience
