"""The built-in metrics written as PromQL over the runtime's metric names."""

from __future__ import annotations

from recops_operator.api.rollout_policy import BuiltinMetric
from recops_operator.rollout.providers import runtime_metrics as rm

_NOT_ERRORS = "|".join(sorted(rm.CLIENT_CODES))


def _sel(version: str, extra: str = "") -> str:
    escaped = version.replace("\\", "\\\\").replace('"', '\\"')
    return f'{{{rm.VERSION_LABEL}="{escaped}"{extra}}}'


def window(seconds: float) -> str:
    """A PromQL range: whole seconds, at least one."""
    return f"{max(round(seconds), 1)}s"


def _increase(metric: str, selector: str, rng: str) -> str:
    """The increase of a counter over the window, including series born inside it.

    ``increase()`` alone ignores a series' first sample, so a candidate's counters, which
    appear with its first request, would lose their first scrape's worth of requests and
    clicks in exactly the window that judges it. A series absent at the window's start
    counts its whole value (counters start at zero). ``or vector(0)``: a series that never
    appeared (no errors yet) is zero, not missing.
    """
    s = f"{metric}{selector}"
    old = f"(increase({s}[{rng}]) and {s} offset {rng})"
    born = f"({s} unless {s} offset {rng})"
    return f"sum({old} or {born}) or vector(0)"


def requests(version: str, rng: str) -> str:
    return _increase(rm.REQUESTS, _sel(version), rng)


def errors(version: str, rng: str) -> str:
    return _increase(rm.REQUESTS, _sel(version, f',{rm.CODE_LABEL}!~"{_NOT_ERRORS}"'), rng)


def latency_p99(version: str, rng: str) -> str:
    return (
        f"histogram_quantile(0.99, sum by (le) "
        f"(increase({rm.LATENCY}_bucket{_sel(version)}[{rng}])))"
    )


def latency_count(version: str, rng: str) -> str:
    return _increase(f"{rm.LATENCY}_count", _sel(version), rng)


def recommendations(version: str, rng: str) -> str:
    return _increase(rm.RECOMMENDATIONS, _sel(version), rng)


def hits(version: str, rng: str) -> str:
    return _increase(rm.ONLINE_HITS, _sel(version), rng)


def clicks(version: str, rng: str) -> str:
    return _increase(
        rm.FEEDBACK_EVENTS, _sel(version, f',{rm.EVENT_LABEL}="{rm.CLICK_EVENT}"'), rng
    )


def builtin_queries(kind: BuiltinMetric, stable: str, candidate: str, rng: str) -> dict[str, str]:
    """Named scalar queries whose answers make up the built-in metric's observation."""
    if kind is BuiltinMetric.ERROR_RATE:
        return {"errors": errors(candidate, rng), "requests": requests(candidate, rng)}
    if kind is BuiltinMetric.LATENCY_P99:
        return {"p99": latency_p99(candidate, rng), "count": latency_count(candidate, rng)}
    success = hits if kind is BuiltinMetric.HIT_RATE_VS_STABLE else clicks
    return {
        "cand_successes": success(candidate, rng),
        "cand_trials": recommendations(candidate, rng),
        "stable_successes": success(stable, rng),
        "stable_trials": recommendations(stable, rng),
    }


def render_custom(query: str, stable: str, candidate: str) -> str:
    """A user's PromQL with the version placeholders filled in."""
    return query.replace("{{candidate}}", candidate).replace("{{stable}}", stable)
