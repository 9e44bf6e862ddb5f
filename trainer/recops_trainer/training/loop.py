"""The training loop: one function for the plain process and for every Ray Train worker,
in memory or streamed.

``fit`` trains with early stopping on validation and calls hooks after every epoch; the
hooks report (log lines, progress bar, MLflow, ``ray.train.report``) and checkpoint.
Where the batches and the validation users come from is the ``TrainingData`` it is given
(``training.batches``): a split's sampler, or a Ray Data shard of a prepared folder.
Data parallelism is injected through ``Distributed``: each worker reads its own share of
users, gradients are averaged before every step, and validation runs on rank 0 only, its
verdict shared with the others so that every worker stops at the same epoch.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Sequence
from typing import Any

import torch

from recops_contracts.training import EvaluationProtocol, ModelHyperparameters
from recops_trainer.config import TrainingSettings
from recops_trainer.data.split import Split
from recops_trainer.evaluation.evaluator import evaluate
from recops_trainer.evaluation.scoring import model_scorer
from recops_trainer.evaluation.users import EvalUsers, Stage
from recops_trainer.model.network import SSEPT
from recops_trainer.training.batches import InMemoryData, TrainingData
from recops_trainer.training.state import (
    MONITORED_METRIC,
    PHASES,
    Distributed,
    EpochResult,
    Hook,
    TrainState,
)
from recops_trainer.training.steps import (
    _accumulate_gradients,
    _on_cpu,
    build_model,
    training_device,
)

log = logging.getLogger("recops.train")


def validate(
    users: EvalUsers, model: SSEPT, settings: TrainingSettings, seed: int
) -> dict[str, Any]:
    return evaluate(
        users,
        model_scorer(model),
        maxlen=model.shape.maxlen,
        stage=Stage.VALID,
        protocols=(EvaluationProtocol.SAMPLED, EvaluationProtocol.FULL),
        limit=settings.eval_users,
        seed=seed,
    )


def fit(
    data: Split | TrainingData,
    hp: ModelHyperparameters,
    settings: TrainingSettings | None = None,
    *,
    hooks: Sequence[Hook] = (),
    resume: TrainState | None = None,
    dist: Distributed | None = None,
) -> tuple[SSEPT, TrainState]:
    """Train; returns the best-validation model (eval mode) and the final state.

    ``data`` is a split (trained in memory) or any ``TrainingData``.
    """
    data = InMemoryData(data) if isinstance(data, Split) else data
    settings = settings or TrainingSettings()
    dist = dist or Distributed()
    if settings.threads:
        torch.set_num_threads(settings.threads)
    torch.manual_seed(hp.seed)
    device = dist.device or training_device()
    model = build_model(data, hp).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=hp.learning_rate, betas=(0.9, 0.98))
    batches = data.batches(hp, dist)
    validation_users = data.validation_users()
    state = resume or TrainState()
    if resume is not None:
        model.load_state_dict(resume.model_state)
        optimizer.load_state_dict(resume.optimizer_state)
        batches.restore(resume.sampler_state)
        if resume.torch_rng is not None:
            torch.set_rng_state(resume.torch_rng)
        _adopt_monitor(state, settings.monitor)
    state.monitor = settings.monitor.value
    # A run that stopped at a plateau and is resumed with decays left goes on from there.
    _decay_at_plateau(model, optimizer, state, settings)
    model.train()
    loop_started = time.perf_counter()
    state_elapsed = float(state.history[-1].get("elapsed", 0.0)) if state.history else 0.0
    deadline = None
    if settings.time_limit_minutes is not None:
        deadline = time.monotonic() + settings.time_limit_minutes * 60.0
    while state.epoch < hp.epochs and not state.stopped_early:
        started = time.perf_counter()
        total = 0.0
        steps = sequences = 0
        phases = dict.fromkeys(PHASES, 0.0)
        epoch = batches.epoch()
        while True:
            # "sample": the time spent waiting for the next batch, drawn here or streamed in.
            tick = time.perf_counter()
            batch = next(epoch, None)
            if batch is None:
                break
            phases["sample"] += time.perf_counter() - tick
            optimizer.zero_grad(set_to_none=True)
            total += _accumulate_gradients(
                model, batch, hp, data.num_items, device, phases, settings.precision
            )
            tick = time.perf_counter()
            if dist.sync_gradients is not None:
                dist.sync_gradients(model)
            optimizer.step()
            phases["optimizer"] += time.perf_counter() - tick
            steps += 1
            sequences += len(batch.users)
        state.epoch += 1
        seconds = time.perf_counter() - started
        result = EpochResult(
            state.epoch,
            total / max(1, steps),
            seconds,
            phases={k: round(v, 3) for k, v in phases.items()},
            sequences=sequences,
        )
        out_of_time = _shared_flag(deadline is not None and time.monotonic() > deadline, dist)
        last = state.epoch >= hp.epochs or out_of_time
        if state.epoch % settings.eval_every == 0 or last:
            _validate_epoch(validation_users, model, settings, hp.seed, state, result, dist)
            if not last:
                _decay_at_plateau(model, optimizer, state, settings)
        result.final = last or state.stopped_early
        state.model_state = _on_cpu(model.state_dict())
        state.optimizer_state = optimizer.state_dict()
        state.sampler_state = batches.state()
        state.torch_rng = torch.get_rng_state()
        state.history.append(
            {
                "epoch": result.epoch,
                "loss": result.loss,
                "seconds": result.seconds,
                "phases": result.phases,
                # Wall time since the loop started, validations included: time to quality.
                "elapsed": round(time.perf_counter() - loop_started + state_elapsed, 3),
                # Sequences trained this epoch, all workers together (this worker's times
                # the worker count: the shares are equal).
                "sequences": sequences * dist.world,
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


def _shared_flag(flag: bool, dist: Distributed) -> bool:
    """Rank 0's verdict, so that every worker leaves the loop at the same epoch."""
    if dist.broadcast is None:
        return flag
    return dist.broadcast([1.0 if flag else 0.0])[0] > 0.5


def _validate_epoch(
    users: EvalUsers,
    model: SSEPT,
    settings: TrainingSettings,
    seed: int,
    state: TrainState,
    result: EpochResult,
    dist: Distributed,
) -> None:
    score = -math.inf
    if dist.is_main:
        result.validation = validate(users, model, settings, seed)
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
