"""Conditions keep their transition time unless their status flips; Ready rolls them up."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from recops_operator.api.conditions import (
    READY,
    ConditionStatus,
    aggregate_ready,
    get_condition,
    set_condition,
)

T0 = datetime(2026, 1, 1, tzinfo=UTC)
T1 = T0 + timedelta(minutes=5)


def test_new_condition_gets_now() -> None:
    conds = set_condition([], "Trained", True, "TrainingSucceeded", now=T0)
    assert conds[0].last_transition_time == T0
    assert conds[0].status == ConditionStatus.TRUE


def test_same_status_keeps_transition_time_but_updates_reason() -> None:
    conds = set_condition([], "Trained", False, "Running", "epoch 1", now=T0)
    conds = set_condition(
        conds, "Trained", False, "Running", "epoch 2", observed_generation=3, now=T1
    )
    cond = get_condition(conds, "Trained")
    assert cond is not None
    assert cond.last_transition_time == T0
    assert cond.message == "epoch 2"
    assert cond.observed_generation == 3


def test_flip_moves_transition_time() -> None:
    conds = set_condition([], "Trained", False, "Running", now=T0)
    conds = set_condition(conds, "Trained", True, "TrainingSucceeded", now=T1)
    assert len(conds) == 1
    assert conds[0].last_transition_time == T1


def test_other_conditions_untouched() -> None:
    conds = set_condition([], "Trained", True, "Done", now=T0)
    conds = set_condition(conds, "Serving", False, "NoEndpoints", now=T1)
    assert [c.type for c in conds] == ["Trained", "Serving"]
    assert conds[0].last_transition_time == T0


def test_ready_true_only_when_all_parts_true() -> None:
    conds = set_condition([], "Trained", True, "Done", now=T0)
    conds = set_condition(conds, "Serving", True, "Serving", now=T0)
    conds = aggregate_ready(conds, ["Trained", "Serving"], ["Degraded"], now=T0)
    ready = get_condition(conds, READY)
    assert ready is not None and ready.status == ConditionStatus.TRUE


def test_ready_names_the_failing_part() -> None:
    conds = set_condition([], "Trained", True, "Done", now=T0)
    conds = set_condition(conds, "Serving", False, "DeploymentUnavailable", "0/2 ready", now=T0)
    conds = aggregate_ready(conds, ["Trained", "Serving"], now=T0)
    ready = get_condition(conds, READY)
    assert ready is not None
    assert ready.status == ConditionStatus.FALSE
    assert ready.reason == "DeploymentUnavailable"
    assert "Serving" in ready.message


def test_ready_unknown_while_a_part_has_not_reported() -> None:
    conds = set_condition([], "Trained", True, "Done", now=T0)
    conds = aggregate_ready(conds, ["Trained", "EnginesReady"], now=T0)
    ready = get_condition(conds, READY)
    assert ready is not None and ready.status == ConditionStatus.UNKNOWN
    assert ready.reason == "EnginesReadyPending"


def test_degraded_overrides_ready() -> None:
    conds = set_condition([], "Trained", True, "Done", now=T0)
    conds = set_condition(conds, "Degraded", True, "RolloutAborted", "hit rate fell", now=T0)
    conds = aggregate_ready(conds, ["Trained"], ["Degraded"], now=T1)
    ready = get_condition(conds, READY)
    assert ready is not None and ready.status == ConditionStatus.FALSE
    assert ready.reason == "RolloutAborted"
