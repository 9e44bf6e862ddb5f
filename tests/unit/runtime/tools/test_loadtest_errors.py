"""`recops loadtest` fails a run whose errors pass --max-error-rate, and says why."""

from __future__ import annotations

from recops_contracts.loadtest import LoadReport, VersionReport
from recops_runtime.tools.loadtest import too_many_errors


def _report(requests: int, errors: dict[str, int]) -> LoadReport:
    failed = sum(errors.values())
    overall = VersionReport(
        version="all",
        requests=requests,
        ok=requests - failed,
        errors=errors,
        error_rate=failed / requests,
        throughput_rps=1.0,
        p50_ms=1.0,
        p90_ms=1.0,
        p99_ms=1.0,
        max_ms=1.0,
        clicks=0,
        hit_rate=0.0,
    )
    return LoadReport(
        mode="open",
        concurrency=None,
        rate=10.0,
        elapsed_s=1.0,
        requests=requests,
        throughput_rps=1.0,
        error_rate=overall.error_rate,
        p50_ms=1.0,
        p90_ms=1.0,
        p99_ms=1.0,
        feedback_sent=0,
        feedback_errors=0,
        versions=[],
        overall=overall,
    )


def test_half_the_requests_failing_is_a_failure_naming_the_codes() -> None:
    why = too_many_errors(_report(100, {"UNAVAILABLE": 30, "INTERNAL": 20}), 0.01)
    assert why is not None
    assert why.startswith("50 of 100 requests failed (50.0%: INTERNAL=20, UNAVAILABLE=30)")
    assert "--max-error-rate 0.01" in why


def test_errors_up_to_the_limit_pass() -> None:
    assert too_many_errors(_report(100, {"UNAVAILABLE": 1}), 0.01) is None
    assert too_many_errors(_report(100, {}), 0.0) is None
    assert too_many_errors(_report(100, {"UNAVAILABLE": 100}), 1.0) is None
