"""The built-in metrics written as PromQL over the runtime's metric names."""

from __future__ import annotations

from collections.abc import Mapping

from recops_operator.api.rollout_policy import BuiltinMetric
from recops_operator.queries import runtime_metrics as rm

_NOT_ERRORS = "|".join(sorted(rm.CLIENT_CODES))


Scope = Mapping[str, str]  # extra label matchers: which RecModel's series
NO_SCOPE: Scope = {}


def scope_of(namespace: str, recmodel: str) -> Scope:
    """The matchers that pick one RecModel's series out of a cluster's."""
    return {rm.NAMESPACE_LABEL: namespace, rm.RECMODEL_LABEL: recmodel}


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _sel(version: str | None, extra: str = "", scope: Scope = NO_SCOPE) -> str:
    """A selector on one version (None: every version) within ``scope``."""
    matchers = [f"{rm.VERSION_LABEL}={_quote(version)}"] if version is not None else []
    matchers += [f"{label}={_quote(value)}" for label, value in sorted(scope.items())]
    return "{" + ",".join(matchers) + extra + "}"


def window(seconds: float) -> str:
    """A PromQL range: whole seconds, at least one."""
    return f"{max(round(seconds), 1)}s"


def _increase(metric: str, selector: str, rng: str) -> str:
    """The exact increase of a counter over the window, including series born inside it.

    The difference between the last sample and the one a window earlier counts whole
    requests and clicks: ``increase()`` extrapolates each series to the window's edges
    (and stops short of zero), and the analysis's binomial tests would take such scaled,
    fractional counts for sample sizes. A series reset inside the window (a restarted pod)
    falls back to ``increase()``, which adds up across resets. A series absent a window
    ago counts its whole value (counters start at zero). ``or vector(0)``: a series that
    never appeared (no errors yet) is zero, not missing.
    """
    s = f"{metric}{selector}"
    exact = f"((({s} - {s} offset {rng}) >= 0) and (resets({s}[{rng}]) == 0))"
    reset = f"(increase({s}[{rng}]) and {s} offset {rng})"
    born = f"({s} unless {s} offset {rng})"
    return f"sum({exact} or {reset} or {born}) or vector(0)"


def requests(version: str, rng: str, scope: Scope = NO_SCOPE) -> str:
    return _increase(rm.REQUESTS, _sel(version, scope=scope), rng)


def errors(version: str, rng: str, scope: Scope = NO_SCOPE) -> str:
    return _increase(rm.REQUESTS, _sel(version, f',{rm.CODE_LABEL}!~"{_NOT_ERRORS}"', scope), rng)


def latency_p99(version: str, rng: str, scope: Scope = NO_SCOPE) -> str:
    return (
        f"histogram_quantile(0.99, sum by (le) "
        f"(increase({rm.LATENCY}_bucket{_sel(version, scope=scope)}[{rng}])))"
    )


def latency_count(version: str, rng: str, scope: Scope = NO_SCOPE) -> str:
    return _increase(f"{rm.LATENCY}_count", _sel(version, scope=scope), rng)


def recommendations(version: str, rng: str, scope: Scope = NO_SCOPE) -> str:
    return _increase(rm.RECOMMENDATIONS, _sel(version, scope=scope), rng)


def hits(version: str, rng: str, scope: Scope = NO_SCOPE) -> str:
    return _increase(rm.ONLINE_HITS, _sel(version, scope=scope), rng)


def clicks(version: str, rng: str, scope: Scope = NO_SCOPE) -> str:
    return _increase(
        rm.FEEDBACK_EVENTS, _sel(version, f',{rm.EVENT_LABEL}="{rm.CLICK_EVENT}"', scope), rng
    )


def drift_triggered(version: str, scope: Scope = NO_SCOPE) -> str:
    """How many drift statistics of ``version`` the runtime reports as triggered (0 while
    none is, or before a serving pod judged its first window)."""
    return f"count({rm.DRIFT_TRIGGERED}{_sel(version, scope=scope)} == 1) or vector(0)"


def drift_triggered_statistics(version: str, scope: Scope = NO_SCOPE) -> str:
    """One series per drift statistic of ``version`` that has triggered (label
    ``statistic``)."""
    return f"{rm.DRIFT_TRIGGERED}{_sel(version, scope=scope)} == 1"


def drift_values(version: str | None = None, scope: Scope = NO_SCOPE) -> str:
    """Each drift statistic's last full window, per version (``None``: every version)."""
    return rm.DRIFT + (_sel(version, scope=scope) if version is not None or scope else "")


def drift_windows(version: str, scope: Scope = NO_SCOPE) -> str:
    """How many full windows of ``version``'s requests the drift monitor has judged."""
    return f"{rm.DRIFT_WINDOWS}{_sel(version, scope=scope)}"


def hit_rate_by_version(rng: str) -> str:
    """The online hit rate of each version over ``rng`` (label ``version``): clicks on a
    recommended item per recommendation."""
    by = f"sum by ({rm.VERSION_LABEL})"
    return (
        f"{by} (increase({rm.ONLINE_HITS}[{rng}])) / {by} (increase({rm.RECOMMENDATIONS}[{rng}]))"
    )


def feedback_events(rng: str, scope: Scope = NO_SCOPE) -> str:
    """Feedback events of every version and type: the new interactions of a window."""
    return _increase(rm.FEEDBACK_EVENTS, _sel(None, scope=scope), rng)


def builtin_queries(
    kind: BuiltinMetric, stable: str, candidate: str, rng: str, scope: Scope = NO_SCOPE
) -> dict[str, str]:
    """Named scalar queries whose answers make up the built-in metric's observation."""
    # The stable version's error rate and latency are only reported beside the candidate's.
    if kind is BuiltinMetric.ERROR_RATE:
        return {
            "errors": errors(candidate, rng, scope),
            "requests": requests(candidate, rng, scope),
            "stable_errors": errors(stable, rng, scope),
            "stable_requests": requests(stable, rng, scope),
        }
    if kind is BuiltinMetric.LATENCY_P99:
        return {
            "p99": latency_p99(candidate, rng, scope),
            "count": latency_count(candidate, rng, scope),
            "stable_p99": latency_p99(stable, rng, scope),
        }
    success = hits if kind is BuiltinMetric.HIT_RATE_VS_STABLE else clicks
    return {
        "cand_successes": success(candidate, rng, scope),
        "cand_trials": recommendations(candidate, rng, scope),
        "stable_successes": success(stable, rng, scope),
        "stable_trials": recommendations(stable, rng, scope),
    }


def render_custom(query: str, stable: str, candidate: str, scope: Scope = NO_SCOPE) -> str:
    """A user's PromQL with the placeholders filled in: ``{{candidate}}``, ``{{stable}}``,
    and, for a RecModel's rollout, ``{{namespace}}`` and ``{{recmodel}}``."""
    query = query.replace("{{candidate}}", candidate).replace("{{stable}}", stable)
    if scope:
        query = query.replace("{{namespace}}", scope[rm.NAMESPACE_LABEL])
        query = query.replace("{{recmodel}}", scope[rm.RECMODEL_LABEL])
    return query
