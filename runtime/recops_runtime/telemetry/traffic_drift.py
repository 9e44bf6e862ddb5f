"""Drift of a served version's traffic from its training data, as distances over windows.

Requests are grouped into windows of a fixed number of requests; when a window fills, each
statistic is computed against the reference (the training snapshot, or for the scores the
version's own first window) and compared with its threshold. A statistic triggers after
``consecutive`` breaching windows in a row, so one unusual window never retrains a model.

Distances, not p-values: on windows of thousands of requests a test of "same distribution"
rejects for differences nobody would act on, while a distance with a threshold says how far
the traffic moved. The statistics:

- ``popularity_psi`` and ``popularity_linf``: the newest history item of each request,
  bucketed as the training data's top items one by one, the next ranks in bands that
  double (a trend among mid-catalogue titles moves a band's share, where one "other"
  bucket would hide it), and one bucket for the rest (so a catalogue of a million items
  costs ``top_items`` plus about ten counters); population stability index and the largest
  change of one bucket's share.
- ``unknown_item_rate``: history items the model does not know, per history item.
- ``length_psi``: history lengths, in the training data's quantile bins.
- ``cold_start_share``: requests answered by the popularity fallback.
- ``score_psi``: the top-1 score, in quantile bins of the first full window's scores.
- ``coverage``: distinct items in the returned lists per catalogue item (reported; a
  falling coverage is a symptom, not a trigger, so it has no threshold).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path

import numpy as np
import numpy.typing as npt

from recops_contracts.drift import COVERAGE, DriftThresholds

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]

# Added to every bucket's count before shares are taken: an empty bucket would make PSI
# infinite, and half a count is the usual (Jeffreys) correction.
SMOOTHING = 0.5
LENGTH_BINS = 10
SCORE_BINS = 10


def shares(counts: npt.ArrayLike) -> FloatArray:
    """Smoothed shares of bucket counts."""
    smoothed = np.asarray(counts, dtype=np.float64) + SMOOTHING
    out: FloatArray = smoothed / smoothed.sum()
    return out


def psi(expected: npt.ArrayLike, observed: npt.ArrayLike) -> float:
    """Population stability index of two count (or share) vectors over the same buckets:
    sum((o - e) * ln(o / e)), 0 for equal distributions, symmetric, about 0.1 for a
    moderate and 0.25 for a large shift by the usual reading."""
    e, o = shares(expected), shares(observed)
    return float(np.sum((o - e) * np.log(o / e)))


def linf(expected: npt.ArrayLike, observed: npt.ArrayLike) -> float:
    """The largest change of one bucket's share."""
    return float(np.max(np.abs(shares(observed) - shares(expected))))


def quantile_edges(values: npt.ArrayLike, bins: int) -> FloatArray:
    """Inner edges of ``bins`` equal-count bins of ``values`` (ties merged)."""
    inner = np.quantile(np.asarray(values, dtype=np.float64), np.linspace(0, 1, bins + 1)[1:-1])
    return np.unique(inner)


def bucket_counts(values: npt.ArrayLike, edges: FloatArray) -> IntArray:
    return np.bincount(
        np.searchsorted(edges, np.asarray(values), side="right"), minlength=edges.size + 1
    ).astype(np.int64)


# Items the reference keeps counts for: topItems is at most this many.
REFERENCE_ITEMS = 1000
REFERENCE_FILE = "drift_reference.npz"


@dataclass(frozen=True)
class Reference:
    """The training data's side of each comparison (written beside the engines, so each
    served version is compared with the data it was trained on)."""

    top_items: IntArray  # internal item ids, most popular first
    popularity: IntArray  # interactions per top item, then the "other" bucket
    length_edges: FloatArray
    lengths: IntArray  # training histories per length bin
    num_items: int
    maxlen: int  # histories are compared as the model reads them: their last maxlen items
    # Bucketing (see ``head``): the first ``own`` of top_items get a bucket each (None: all),
    # then top_items[own:band_ends[0]], [band_ends[0]:band_ends[1]], ... one band each.
    own: int | None = None
    band_ends: tuple[int, ...] = ()

    @classmethod
    def from_sequences(
        cls,
        sequences: Sequence[IntArray],
        num_items: int,
        maxlen: int,
        top_items: int = REFERENCE_ITEMS,
    ) -> Reference:
        """From the training histories (internal item ids, oldest first)."""
        items = np.concatenate([np.asarray(s, dtype=np.int64) for s in sequences])
        counts = np.bincount(items, minlength=num_items + 1)
        counts[0] = 0  # padding
        top = np.argsort(-counts, kind="stable")[:top_items]
        top = top[counts[top] > 0]
        popularity = np.append(counts[top], counts.sum() - counts[top].sum())
        lengths = np.minimum([len(s) for s in sequences], maxlen).astype(np.float64)
        edges = quantile_edges(lengths, LENGTH_BINS)
        return cls(top, popularity, edges, bucket_counts(lengths, edges), num_items, maxlen)

    def head(self, top_items: int) -> Reference:
        """The reference as a monitor buckets it: its ``top_items`` most popular items one
        bucket each, the kept ranks after them in bands that double (top..2 top, 2 top..4
        top, ...), and the rest in one "other" bucket."""
        kept = self.top_items.size
        own = min(top_items, kept)
        ends: list[int] = []
        while (ends[-1] if ends else own) < kept:
            ends.append(min(2 * (ends[-1] if ends else own), kept))
        starts = [own, *ends[:-1]]
        popularity = np.concatenate(
            [
                self.popularity[:own],
                [self.popularity[a:b].sum() for a, b in zip(starts, ends, strict=True)],
                self.popularity[kept:],
            ]
        ).astype(np.int64)
        return replace(self, popularity=popularity, own=own, band_ends=tuple(ends))

    @cached_property
    def _bucket_of(self) -> IntArray:
        """Each item id's popularity bucket (built once: a catalogue can be large)."""
        own = self.top_items.size if self.own is None else self.own
        bucket = np.full(self.num_items + 1, self.popularity.size - 1, dtype=np.int64)
        bucket[self.top_items[:own]] = np.arange(own)
        starts = (own, *self.band_ends[:-1])
        for band, (start, end) in enumerate(zip(starts, self.band_ends, strict=True)):
            bucket[self.top_items[start:end]] = own + band
        return bucket

    def popularity_buckets(self, items: IntArray) -> IntArray:
        """Counts of ``items`` over the reference's buckets (top items, bands, other)."""
        return np.bincount(self._bucket_of[items], minlength=self.popularity.size)

    def save(self, path: Path) -> None:
        np.savez(
            path,
            top_items=self.top_items,
            popularity=self.popularity,
            length_edges=self.length_edges,
            lengths=self.lengths,
            shape=np.array([self.num_items, self.maxlen], dtype=np.int64),
        )

    @classmethod
    def load(cls, path: Path) -> Reference:
        """Raises ValueError naming the file when it is not a drift reference."""
        try:
            with np.load(path) as data:
                num_items, maxlen = (int(v) for v in data["shape"])
                reference = cls(
                    data["top_items"].astype(np.int64),
                    data["popularity"].astype(np.int64),
                    data["length_edges"].astype(np.float64),
                    data["lengths"].astype(np.int64),
                    num_items,
                    maxlen,
                )
        except (OSError, KeyError, ValueError) as exc:
            raise ValueError(f"{path} is not a drift reference: {exc}") from exc
        top = reference.top_items
        if reference.popularity.size != top.size + 1 or (
            top.size and (top.min() < 1 or top.max() > num_items)
        ):
            raise ValueError(f"{path} is not a drift reference: item ids outside the catalogue")
        return reference


@dataclass
class WindowReport:
    """One full window: each statistic, which breached, and which triggered."""

    index: int
    statistics: dict[str, float]
    breached: frozenset[str]
    triggered: frozenset[str]


@dataclass
class DriftMonitor:
    """Accumulates one served version's requests and judges each full window."""

    reference: Reference
    thresholds: DriftThresholds = field(default_factory=DriftThresholds)
    windows: int = 0
    runs: dict[str, int] = field(default_factory=dict)  # consecutive breaching windows
    _newest: list[int] = field(default_factory=list)
    _lengths: list[int] = field(default_factory=list)
    _unknown: int = 0
    _history_items: int = 0
    _fallbacks: int = 0
    _top1: list[float] = field(default_factory=list)
    _returned: set[int] = field(default_factory=set)
    _score_edges: FloatArray | None = None
    _score_reference: IntArray | None = None

    def observe(
        self,
        history: IntArray,
        unknown: int,
        returned: IntArray,
        top1_score: float | None,
        *,
        fallback: bool,
    ) -> WindowReport | None:
        """One answered request: its known history items (internal ids, oldest first), how
        many of its items the model did not know, the returned items and the best score
        (None for a fallback). Returns the report when this request fills a window."""
        if history.size:
            self._newest.append(int(history[-1]))
        self._lengths.append(min(int(history.size) + unknown, self.reference.maxlen))
        self._unknown += unknown
        self._history_items += int(history.size) + unknown
        self._fallbacks += fallback
        if top1_score is not None:
            self._top1.append(top1_score)
        self._returned.update(returned.tolist())
        if len(self._lengths) < self.thresholds.window:
            return None
        return self._close_window()

    def __post_init__(self) -> None:
        self.reference = self.reference.head(self.thresholds.top_items)

    def _close_window(self) -> WindowReport:
        ref, limits = self.reference, self.thresholds.limits()
        newest = self.reference.popularity_buckets(np.asarray(self._newest, dtype=np.int64))
        lengths = bucket_counts(self._lengths, ref.length_edges)
        stats = {
            "popularity_psi": psi(ref.popularity, newest),
            "popularity_linf": linf(ref.popularity, newest),
            "unknown_item_rate": self._unknown / max(1, self._history_items),
            "length_psi": psi(ref.lengths, lengths),
            "cold_start_share": self._fallbacks / len(self._lengths),
            "score_psi": self._score_psi(),
            COVERAGE: len(self._returned) / max(1, ref.num_items),
        }
        breached = frozenset(k for k, limit in limits.items() if stats[k] > limit)
        self.runs = {k: self.runs.get(k, 0) + 1 if k in breached else 0 for k in limits}
        triggered = frozenset(k for k, n in self.runs.items() if n >= self.thresholds.consecutive)
        report = WindowReport(self.windows, stats, breached, triggered)
        self.windows += 1
        self._newest, self._lengths, self._top1 = [], [], []
        self._unknown = self._history_items = self._fallbacks = 0
        self._returned = set()
        return report

    def _score_psi(self) -> float:
        """Against the first window that had scores: the scale of a model's scores is its
        own, so the training data cannot be the reference."""
        if not self._top1:
            return 0.0
        if self._score_edges is None or self._score_reference is None:
            self._score_edges = quantile_edges(self._top1, SCORE_BINS)
            self._score_reference = bucket_counts(self._top1, self._score_edges)
            return 0.0
        return psi(self._score_reference, bucket_counts(self._top1, self._score_edges))
