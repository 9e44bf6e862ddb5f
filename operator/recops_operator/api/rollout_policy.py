"""The canary policy, in Argo Rollouts' vocabulary: steps, analysis metrics, limits.

Shared by RecModel (its default policy) and Rollout (an explicit policy).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Literal

from pydantic import Field, model_validator

from recops_contracts.wire import DnsName
from recops_operator.api.base import ApiModel, Duration, cel_rules


class PauseStep(ApiModel):
    """Hold the current weights; without a duration, until promoted."""

    duration: Duration | None = Field(
        default=None, description="How long to pause, e.g. 30s or 5m; empty pauses until promoted."
    )


class AnalysisStep(ApiModel):
    """Run analysis at the current weights before moving on."""

    metrics: list[DnsName] | None = Field(
        default=None, description="Names of the policy's metrics to run; all when empty."
    )
    count: int = Field(
        default=1, ge=1, le=1000, description="Measurements to take, one per analysis interval."
    )


class CanaryStep(ApiModel):
    """Exactly one of setWeight, pause or analysis."""

    model_config = ApiModel.model_config | {
        "json_schema_extra": {"minProperties": 1, "maxProperties": 1}
    }

    set_weight: int | None = Field(
        default=None, ge=0, le=100, description="Percent of traffic for the candidate."
    )
    pause: PauseStep | None = Field(default=None, description="Pause the rollout.")
    analysis: AnalysisStep | None = Field(default=None, description="Analyse live metrics.")

    @model_validator(mode="after")
    def _exactly_one(self) -> CanaryStep:
        given = [n for n in ("set_weight", "pause", "analysis") if getattr(self, n) is not None]
        if len(given) != 1:
            raise ValueError(
                "a step holds exactly one of setWeight, pause or analysis; "
                f"this one holds {len(given)}: split it into separate steps"
            )
        return self


class BuiltinMetric(StrEnum):
    """Metrics the runtime exports, computed per version without writing PromQL."""

    ERROR_RATE = "error-rate"
    LATENCY_P99 = "latency-p99"
    HIT_RATE_VS_STABLE = "hit-rate-vs-stable"
    CTR_VS_STABLE = "ctr-vs-stable"


class PrometheusQuery(ApiModel):
    """A PromQL query evaluated through Prometheus' HTTP API."""

    address: str | None = Field(
        default=None,
        max_length=2048,
        description="Prometheus base URL; the operator's default when empty.",
    )
    query: str = Field(
        min_length=1,
        max_length=8192,
        description="PromQL returning one scalar; {{candidate}} and {{stable}} are replaced by "
        "the version labels, {{namespace}} and {{recmodel}} by the RecModel's (its series carry "
        "them as namespace and recops_io_recmodel).",
    )


class Comparison(StrEnum):
    LT = "<"
    LE = "<="
    GT = ">"
    GE = ">="


class AnalysisMetric(ApiModel):
    """One metric the analysis measures, and what counts as success."""

    model_config = ApiModel.model_config | {
        "json_schema_extra": cel_rules(
            (
                "has(self.builtin) != has(self.prometheus)",
                "set exactly one of builtin or prometheus",
            )
        )
    }

    name: DnsName = Field(description="Metric name, referenced by analysis steps.")
    builtin: BuiltinMetric | None = Field(default=None, description="A built-in metric.")
    prometheus: PrometheusQuery | None = Field(default=None, description="A PromQL metric.")
    success_condition: Comparison = Field(
        description="How the measured value must compare with the threshold to pass."
    )
    threshold: float = Field(
        description="Threshold; for *-vs-stable metrics, the allowed candidate minus stable "
        "difference (for example -0.01)."
    )
    min_sample_size: int = Field(
        default=100,
        ge=0,
        description="Requests (or recommendations) needed before a result counts; fewer is "
        "Inconclusive.",
    )
    confidence: float = Field(
        default=0.95,
        gt=0.5,
        lt=1.0,
        description="Confidence of the two-proportion test for *-vs-stable metrics.",
    )
    failure_limit: int = Field(
        default=0, ge=0, le=100, description="Failed measurements tolerated before aborting."
    )
    inconclusive_limit: int = Field(
        default=3,
        ge=0,
        le=100,
        description="Inconclusive measurements tolerated before pausing for a human.",
    )
    dry_run: bool = Field(default=False, description="Record the metric without gating on it.")

    @model_validator(mode="after")
    def _one_provider(self) -> AnalysisMetric:
        if (self.builtin is None) == (self.prometheus is None):
            raise ValueError(f"metric {self.name!r}: set exactly one of builtin or prometheus")
        return self


def _default_metrics() -> list[AnalysisMetric]:
    return [
        AnalysisMetric(
            name="error-rate",
            builtin=BuiltinMetric.ERROR_RATE,
            success_condition=Comparison.LE,
            threshold=0.01,
        ),
        AnalysisMetric(
            name="latency-p99",
            builtin=BuiltinMetric.LATENCY_P99,
            success_condition=Comparison.LE,
            threshold=0.1,
        ),
        AnalysisMetric(
            name="hit-rate",
            builtin=BuiltinMetric.HIT_RATE_VS_STABLE,
            success_condition=Comparison.GE,
            threshold=-0.01,
            min_sample_size=500,
        ),
    ]


def _default_steps() -> list[CanaryStep]:
    return [
        CanaryStep(set_weight=10),
        CanaryStep(analysis=AnalysisStep()),
        CanaryStep(set_weight=50),
        CanaryStep(analysis=AnalysisStep()),
        CanaryStep(set_weight=100),
    ]


class TrafficRouting(ApiModel):
    """How weights reach the data plane."""

    grpc_route: DnsName | None = Field(
        default=None,
        description="A GRPCRoute of your own (same namespace) to split traffic in: the "
        "operator sets the weights of its <recmodel>-<target>-stable and -canary backends, "
        "Services that follow the stable version and the candidate, and leaves the rest of "
        "the route alone. Empty: the RecModel's own GRPCRoute. Set it on the RecModel; a "
        "Rollout's policy may only repeat it.",
    )
    sticky: bool = Field(
        default=False,
        description="Keep each user on one version for the whole rollout. Applied where "
        "recops serve's own router splits the traffic (recops rollout); a GRPCRoute splits "
        "each request on its own, so in a cluster the Rollout warns (StickyNotApplied).",
    )


class RolloutPolicy(ApiModel):
    """Steps, analysis metrics and traffic routing of a canary rollout."""

    steps: list[CanaryStep] = Field(
        default_factory=_default_steps,
        min_length=1,
        max_length=64,
        description="Canary steps, run in order.",
        json_schema_extra=cel_rules(
            (
                "self.filter(s, has(s.setWeight)).map(s, s.setWeight).isSorted()",
                "setWeight steps must not decrease; order the steps by weight",
            )
        ),
    )
    metrics: list[AnalysisMetric] = Field(
        default_factory=_default_metrics, max_length=32, description="Analysis metrics."
    )
    analysis_interval: Duration = Field(
        default="30s", description="Time between measurements of an analysis step."
    )
    traffic_routing: TrafficRouting = Field(
        default_factory=TrafficRouting, description="Traffic routing."
    )
    inconclusive_action: Literal["pause", "abort"] = Field(
        default="pause",
        description="What to do when a metric passes its inconclusiveLimit.",
    )
    scale_down_delay_seconds: int = Field(
        default=30,
        ge=0,
        le=86400,
        description="Seconds the losing version keeps its pods, at zero traffic, after the "
        "verdict: the replaced stable after a promotion (a rollback within them needs no new "
        "pods), the candidate after an abort (a retry brings them back).",
    )

    @model_validator(mode="after")
    def _consistent(self) -> RolloutPolicy:
        last = 0
        for i, step in enumerate(self.steps):
            if step.set_weight is not None:
                if step.set_weight < last:
                    raise ValueError(
                        f"steps[{i}].setWeight: weights must not decrease "
                        f"({step.set_weight} after {last}); order the steps by weight"
                    )
                last = step.set_weight
        names = [m.name for m in self.metrics]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"metrics: names must be unique; repeated: {', '.join(dupes)}")
        for i, step in enumerate(self.steps):
            if step.analysis is not None:
                if not self.metrics:
                    raise ValueError(f"steps[{i}].analysis: the policy defines no metrics")
                missing = [n for n in step.analysis.metrics or [] if n not in names]
                if missing:
                    raise ValueError(
                        f"steps[{i}].analysis.metrics: unknown metric(s) {', '.join(missing)}; "
                        f"defined: {', '.join(names)}"
                    )
        return self
