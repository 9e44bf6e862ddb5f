"""An untrained SSE-PT of the ML-1M model's shape on the given data: what the benchmarks
measure when no trained model folder is at hand (it costs exactly the same to run)."""

from __future__ import annotations

from pathlib import Path


def untrained_model(data: Path, folder: Path) -> Path:
    """The model folder at ``folder``, written once (2 blocks, 50 + 50 dims, history 200)."""
    if (folder / "weights.pt").is_file():
        return folder
    import torch

    from recops_contracts.training import DatasetFormat, DatasetSource
    from recops_trainer.data.sources import load_source
    from recops_trainer.data.split import leave_one_out
    from recops_trainer.model.folder import save_model
    from recops_trainer.model.network import SSEPT, ModelShape
    from recops_trainer.runs.outcome import id_maps

    snapshot = load_source(DatasetSource(format=DatasetFormat.SASREC, uri=str(data)))
    torch.manual_seed(0)
    shape = ModelShape(
        snapshot.num_users,
        snapshot.num_items,
        maxlen=200,
        item_dim=50,
        user_dim=50,
        num_blocks=2,
        num_heads=1,
        dropout=0.2,
    )
    return save_model(
        folder,
        SSEPT(shape).eval(),
        id_maps=id_maps(snapshot, leave_one_out(snapshot)),
        data_manifest=snapshot.manifest,
        model_version="untrained",
    )
