"""Who writes the route's weights: a Rollout of the candidate without a verdict, else the
RecModel (decisions/recmodel/weights.py)."""

from __future__ import annotations

from typing import Any

from recops_operator.api.recmodel import RecModelStatus
from recops_operator.api.rollout import Rollout
from recops_operator.decisions.recmodel.weights import rollout_holds_weights

STATUS = RecModelStatus(stable_version="1", candidate_version="2")


def rollout(candidate: str, phase: str | None) -> Rollout:
    obj: dict[str, Any] = {
        "metadata": {"name": f"m-{candidate}", "namespace": "ml"},
        "spec": {"recModel": "m", "candidateVersion": candidate},
    }
    if phase is not None:
        obj["status"] = {"phase": phase}
    return Rollout.model_validate(obj)


def test_a_rollout_of_the_candidate_holds_the_weights_until_its_verdict() -> None:
    # Without a status too: its first step reaches the route before its status says so.
    for phase in (None, "Pending", "Progressing", "Paused"):
        assert rollout_holds_weights(STATUS, [rollout("2", phase)]), phase
    for phase in ("Promoted", "Aborted", "Failed"):
        assert not rollout_holds_weights(STATUS, [rollout("2", phase)]), phase


def test_without_a_rollout_of_the_candidate_the_weights_are_the_recmodels() -> None:
    assert not rollout_holds_weights(STATUS, [])
    assert not rollout_holds_weights(STATUS, [rollout("3", "Progressing")])
    no_candidate = RecModelStatus(stable_version="1")
    assert not rollout_holds_weights(no_candidate, [rollout("2", "Progressing")])
    # An old promoted Rollout beside the running one does not take the weights back.
    assert rollout_holds_weights(STATUS, [rollout("1", "Promoted"), rollout("2", "Paused")])
