"""Reading a stage's summary: the last JSON object its command printed."""

from __future__ import annotations

import json

import pytest

from recops_cli.quickstart.processes import last_json_object


def test_the_last_object_wins_over_earlier_output() -> None:
    summary = {"model": "runs/v1", "metrics": {"ndcg@10": 0.4}}
    text = 'epoch 1\n{"progress": 1}\nlog line\n' + json.dumps(summary, indent=2) + "\n"
    assert last_json_object(text) == summary


def test_an_object_at_the_very_start() -> None:
    assert last_json_object('{"ok": true}\n') == {"ok": True}


def test_no_object_is_an_error() -> None:
    with pytest.raises(ValueError):
        last_json_object("training failed\n[1, 2]\n")
