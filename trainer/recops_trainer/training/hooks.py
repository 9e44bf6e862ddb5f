"""Hooks that the training loop calls after each epoch: checkpoints, early models, progress."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

from recops_contracts.training import ModelHyperparameters
from recops_trainer.model.folder import IdMaps, save_model
from recops_trainer.model.network import SSEPT
from recops_trainer.training.state import EpochResult, TrainState

CHECKPOINT_DIR = "checkpoint"
STATE_FILE = "state.pt"


def write_state(state: TrainState, folder: Path) -> Path:
    """Write ``state.pt`` atomically into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    partial = folder / f".{STATE_FILE}.{os.getpid()}"
    state.save(partial)
    partial.replace(folder / STATE_FILE)
    return folder / STATE_FILE


class CheckpointHook:
    """Every ``every`` epochs (and at the end), the full train state to ``out/checkpoint``."""

    def __init__(self, out_dir: Path, every: int) -> None:
        self.folder = Path(out_dir) / CHECKPOINT_DIR
        self.every = every

    def __call__(self, result: EpochResult, state: TrainState, model: SSEPT) -> None:
        if result.epoch % self.every == 0 or result.final:
            write_state(state, self.folder)


class BestModelHook:
    """Refresh ``out/model`` whenever validation improves, so others can use it early.

    Its metrics hold validation only: the test split is read once, at the end.
    """

    def __init__(
        self,
        out_dir: Path,
        hp: ModelHyperparameters,
        id_maps: IdMaps,
        data_manifest: dict[str, Any],
    ) -> None:
        self.folder = Path(out_dir) / "model"
        self.hp = hp
        self.id_maps = id_maps
        self.data_manifest = data_manifest

    def __call__(self, result: EpochResult, state: TrainState, model: SSEPT) -> None:
        if not result.improved:
            return
        best = build_model_like(model)
        best.load_state_dict(state.best_model_state)
        save_model(
            self.folder,
            best,
            id_maps=self.id_maps,
            data_manifest=self.data_manifest,
            metrics={"valid": result.validation, "best_epoch": result.epoch, "final": False},
            hyperparameters=self.hp.model_dump(mode="json", by_alias=True),
            model_version=f"epoch-{result.epoch}",
        )


def build_model_like(model: SSEPT) -> SSEPT:
    return type(model)(model.shape)


class ProgressHook:
    """A progress bar with the latest metrics in a terminal (plain log lines otherwise)."""

    def __init__(self, epochs: int) -> None:
        self.enabled = sys.stderr.isatty()
        self.progress: Any = None
        self.task: Any = None
        self.epochs = epochs

    def __call__(self, result: EpochResult, state: TrainState, model: SSEPT) -> None:
        if not self.enabled:
            return
        from rich.console import Console
        from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

        if self.progress is None:
            self.progress = Progress(
                TextColumn("epoch {task.completed}/{task.total}"),
                BarColumn(),
                TextColumn("{task.description}"),
                TimeRemainingColumn(),
                transient=False,
                console=Console(stderr=True),  # stdout carries the JSON summary
            )
            self.progress.start()
            self.task = self.progress.add_task("", total=self.epochs)
        text = f"loss {result.loss:.4f}"
        if state.best_score > float("-inf"):
            text += f" best val ndcg@10 {state.best_score:.4f} (epoch {state.best_epoch})"
        self.progress.update(self.task, completed=result.epoch, description=text)
        if result.final:
            self.progress.stop()
