"""`recops operator run` refuses bad settings before it connects, naming each variable."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from recops_operator.cli import app


def test_invalid_settings_name_their_environment_variables(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("RECOPS_OPERATOR_LOG_FORMAT", "xml")
    monkeypatch.setenv("RECOPS_ROLLOUT_QUERY_TIMEOUT_SECONDS", "soon")
    result = CliRunner().invoke(app, ["run", "--server", "http://127.0.0.1:9"])
    assert result.exit_code == 2
    message = result.output
    assert "invalid settings" in message
    assert "RECOPS_OPERATOR_LOG_FORMAT: Input should be 'json', 'plain' or 'full'" in message
    assert "RECOPS_ROLLOUT_QUERY_TIMEOUT_SECONDS: Input should be a valid number" in message
