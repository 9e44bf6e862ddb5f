"""The SSE-PT network: shapes, causality, padding, SASRec mode, and the model folder."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from recops_trainer.model.folder import IdMaps, load_model, save_model
from recops_trainer.model.network import PADDING_SCORE, SSEPT, ModelShape

SHAPE = ModelShape(num_users=5, num_items=12, maxlen=6, item_dim=8, user_dim=8, dropout=0.2)


def model(shape: ModelShape = SHAPE) -> SSEPT:
    torch.manual_seed(0)
    return SSEPT(shape).eval()


HISTORY = torch.tensor([[0, 0, 3, 4, 5, 6], [1, 2, 3, 4, 5, 6]])
USERS = torch.tensor([1, 2])


def test_scores_every_item_and_never_padding() -> None:
    scores = model()(USERS, HISTORY)
    assert scores.shape == (2, 13)
    assert torch.all(scores[:, 0] == PADDING_SCORE)
    assert torch.all(scores[:, 1:] > PADDING_SCORE)


def test_a_later_item_never_changes_an_earlier_position() -> None:
    net = model()
    before, _ = net.encode(USERS, HISTORY)
    changed = HISTORY.clone()
    changed[:, 4] = 11
    after, _ = net.encode(USERS, changed)
    assert torch.allclose(before[:, :4], after[:, :4])
    assert not torch.allclose(before[:, 4:], after[:, 4:])


def test_padding_does_not_leak_into_real_positions() -> None:
    net = model()
    trimmed, _ = net.encode(USERS[:1], HISTORY[:1, 2:])
    full, _ = net.encode(USERS[:1], HISTORY[:1])
    assert torch.allclose(trimmed, full[:, 2:], atol=1e-6)


def test_the_user_changes_sse_pt_scores_but_not_sasrec() -> None:
    ssept = model()
    assert not torch.allclose(ssept(USERS, HISTORY[[0, 0]]), ssept(USERS[[0, 0]], HISTORY[[0, 0]]))
    sasrec = model(ModelShape(num_users=5, num_items=12, maxlen=6, item_dim=8, user_dim=0))
    assert torch.allclose(sasrec(USERS, HISTORY[[0, 0]]), sasrec(USERS[[0, 0]], HISTORY[[0, 0]]))


def test_inference_is_deterministic_and_training_is_not() -> None:
    net = model()
    assert torch.equal(net(USERS, HISTORY), net(USERS, HISTORY))
    net.train()
    assert not torch.equal(net(USERS, HISTORY), net(USERS, HISTORY))  # dropout


def test_heads_must_divide_the_width() -> None:
    with pytest.raises(ValueError, match="numHeads"):
        ModelShape(num_users=1, num_items=2, item_dim=10, user_dim=5, num_heads=2)


def test_model_folder_round_trip(tmp_path: Path) -> None:
    net = model()
    maps = IdMaps(
        users=[f"u{i}" for i in range(5)], items=[str(i) for i in range(12)], popular_items=[3, 1]
    )
    folder = save_model(
        tmp_path / "model",
        net,
        id_maps=maps,
        data_manifest={"hash": "abc"},
        metrics={"test": {}},
        model_version="7",
    )
    assert sorted(p.name for p in folder.iterdir()) == [
        "config.json",
        "data_manifest.json",
        "id_maps.json",
        "metrics.json",
        "weights.pt",
    ]
    loaded = load_model(folder)
    assert loaded.model_version == "7"
    assert loaded.config["num_items"] == 12 and loaded.config["maxlen"] == 6
    assert loaded.id_maps == maps
    assert loaded.data_manifest["hash"] == "abc"
    assert torch.equal(loaded.model(USERS, HISTORY), net(USERS, HISTORY))
    # Saving again replaces the folder whole.
    save_model(folder, net, id_maps=maps, data_manifest={"hash": "def"})
    assert load_model(folder).data_manifest["hash"] == "def"


def test_incomplete_folder_is_refused(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(FileNotFoundError, match=r"weights\.pt"):
        load_model(tmp_path)


def test_onnx_export_traces_without_data_dependent_branches(tmp_path: Path) -> None:
    net = model()
    path = tmp_path / "m.onnx"
    torch.onnx.export(
        net,
        (USERS, HISTORY),
        str(path),
        input_names=["user_ids", "history"],
        output_names=["scores"],
        dynamic_axes={"user_ids": {0: "b"}, "history": {0: "b"}},
        dynamo=False,
    )
    import onnxruntime

    session = onnxruntime.InferenceSession(str(path))
    users = torch.tensor([3, 1, 2])
    history = torch.tensor([[0, 0, 0, 0, 0, 9], [1, 2, 3, 4, 5, 6], [0, 7, 7, 8, 9, 10]])
    (out,) = session.run(None, {"user_ids": users.numpy(), "history": history.numpy()})
    assert torch.allclose(torch.from_numpy(out), net(users, history), atol=1e-4)
