"""How a serving version's drift from its training data is judged (``retraining.drift.statistics``
in the RecModel spec, ``--drift`` of ``recops serve``): window size, thresholds and the run
of breaching windows that triggers. The runtime computes the statistics
(``recops_runtime.telemetry.traffic_drift``) and exports them as ``recops_drift{statistic}``.
"""

from __future__ import annotations

from pydantic import Field

from recops_contracts.wire import WireModel

# The statistics with a threshold, in the order the runtime reports them.
THRESHOLDED = (
    "popularity_psi",
    "popularity_linf",
    "unknown_item_rate",
    "length_psi",
    "cold_start_share",
    "score_psi",
)
# Reported without a threshold: a falling coverage is a symptom, not a cause to retrain.
COVERAGE = "coverage"


class DriftThresholds(WireModel):
    """Distances, not p-values: a test of "same distribution" on thousands of requests
    rejects for differences nobody would act on; a distance says how far traffic moved."""

    window: int = Field(
        default=1000,
        ge=100,
        le=10_000_000,
        description="Requests per window; each statistic is computed once per full window.",
    )
    top_items: int = Field(
        default=50,
        ge=1,
        le=1000,
        description="Popularity buckets: the training data's most popular items one each, "
        "the next ranks in bands that double (topItems..2 topItems, ...), and one bucket for "
        "all others (so a large catalogue costs topItems plus about ten counters).",
    )
    popularity_psi: float = Field(
        default=0.25,
        gt=0.0,
        description="Population stability index of the newest history item of each request "
        "against the training data's item popularity (0.1 moderate, 0.25 large).",
    )
    popularity_linf: float = Field(
        default=0.1,
        gt=0.0,
        le=1.0,
        description="Largest change of one popularity bucket's share.",
    )
    unknown_item_rate: float = Field(
        default=0.05,
        gt=0.0,
        le=1.0,
        description="History items the model does not know, per history item.",
    )
    length_psi: float = Field(
        default=0.25,
        gt=0.0,
        description="PSI of history lengths (up to the model's maxlen) against training.",
    )
    cold_start_share: float = Field(
        default=0.2,
        gt=0.0,
        le=1.0,
        description="Requests answered by the popularity fallback (unknown user or items).",
    )
    score_psi: float = Field(
        default=0.25,
        gt=0.0,
        description="PSI of the top-1 score against the version's own first window.",
    )
    consecutive: int = Field(
        default=3,
        ge=1,
        le=1000,
        description="Breaching windows in a row before a statistic triggers.",
    )

    def limits(self) -> dict[str, float]:
        """Statistic name -> the value above which a window breaches."""
        return {name: float(getattr(self, name)) for name in THRESHOLDED}
