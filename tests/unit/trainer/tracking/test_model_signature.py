"""Logged models carry a signature: the network's inputs and output as tensor specs."""

from __future__ import annotations

from recops_trainer.model.network import ModelShape
from recops_trainer.tracking.mlflow_run import model_signature


def test_the_signature_is_the_networks_inputs_and_scores() -> None:
    signature = model_signature(ModelShape(num_users=7, num_items=30, maxlen=12))
    inputs = {spec.name: (spec.type.name, spec.shape) for spec in signature.inputs.inputs}
    assert inputs == {"user_ids": ("int64", (-1,)), "history": ("int64", (-1, 12))}
    (scores,) = signature.outputs.inputs
    assert (scores.name, scores.type.name, scores.shape) == ("scores", "float32", (-1, 31))
