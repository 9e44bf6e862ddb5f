"""Drift statistics on constructed distributions: no drift, a known shift, and the run of
breaching windows that triggers."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from pydantic import ValidationError

from recops_runtime.telemetry.traffic_drift import (
    DriftMonitor,
    DriftThresholds,
    Reference,
    linf,
    psi,
)

ITEMS = 3000
MAXLEN = 200


def zipf_shares(n: int) -> np.ndarray:
    weights = 1.0 / np.arange(1, n + 1) ** 0.9
    return weights / weights.sum()


POPULARITY = zipf_shares(ITEMS)  # item i + 1 has share POPULARITY[i]


def training_sequences(rng: np.random.Generator, users: int = 2000) -> list[np.ndarray]:
    lengths = np.clip(rng.lognormal(4.0, 1.0, users).astype(int), 5, 2000)
    return [rng.choice(ITEMS, size=n, p=POPULARITY) + 1 for n in lengths]


@pytest.fixture(scope="module")
def reference() -> Reference:
    sequences = training_sequences(np.random.default_rng(1234))
    return Reference.from_sequences(sequences, ITEMS, maxlen=MAXLEN)


def feed(
    monitor: DriftMonitor,
    rng: np.random.Generator,
    requests: int,
    *,
    popularity: np.ndarray = POPULARITY,
    unknown_rate: float = 0.0,
    fallback_rate: float = 0.02,
    score_shift: float = 0.0,
) -> list:
    reports = []
    for _ in range(requests):
        length = int(np.clip(rng.lognormal(4.0, 1.0), 5, 2000))
        history = rng.choice(ITEMS, size=min(length, MAXLEN), p=popularity) + 1
        unknown = int(rng.binomial(history.size, unknown_rate))
        history = history[unknown:]  # the model knows the rest
        fallback = bool(rng.random() < fallback_rate)
        returned = rng.choice(ITEMS, size=10, p=POPULARITY) + 1
        score = None if fallback else float(rng.normal(5.0 + score_shift, 1.0))
        report = monitor.observe(history, unknown, returned, score, fallback=fallback)
        if report is not None:
            reports.append(report)
    return reports


def test_distances_of_equal_and_shifted_distributions() -> None:
    assert psi([10, 20, 70], [10, 20, 70]) == 0.0
    assert linf([10, 20, 70], [10, 20, 70]) == 0.0
    # Two buckets, 50/50 against 90/10, with half a count added to each bucket.
    e, o = np.array([50.5, 50.5]) / 101, np.array([90.5, 10.5]) / 101
    assert psi([50, 50], [90, 10]) == pytest.approx(float(np.sum((o - e) * np.log(o / e))))
    assert linf([50, 50], [90, 10]) == pytest.approx(40 / 101)
    assert math.isfinite(psi([100, 0], [0, 100]))  # empty buckets stay finite
    assert psi([50, 50], [90, 10]) == pytest.approx(psi([90, 10], [50, 50]))


def test_the_reference_buckets_the_top_items_and_the_rest(
    reference: Reference, tmp_path: Path
) -> None:
    assert reference.top_items.size == 1000 and reference.popularity.sum() > 100_000
    head = reference.head(50)
    # 50 items, the bands of ranks 50-100, 100-200, 200-400, 400-800, 800-1000, the rest.
    assert head.band_ends == (100, 200, 400, 800, 1000)
    assert head.popularity.size == 50 + 5 + 1
    assert head.popularity.sum() == reference.popularity.sum()
    assert head.popularity[52] == reference.popularity[200:400].sum()
    reference.save(tmp_path / "ref.npz")
    again = Reference.load(tmp_path / "ref.npz")
    assert np.array_equal(again.popularity, reference.popularity) and again.maxlen == MAXLEN
    (tmp_path / "bad.npz").write_bytes(b"not numpy")
    with pytest.raises(ValueError, match=r"bad\.npz is not a drift reference"):
        Reference.load(tmp_path / "bad.npz")
    reference = head
    assert set(reference.top_items[:50].tolist()) <= set(range(1, 61))  # Zipf: the head
    items = np.array([reference.top_items[0], reference.top_items[250], 2999, 2999])
    buckets = reference.popularity_buckets(items)
    assert buckets[0] == 1 and buckets[52] == 1 and buckets[-1] == 2 and buckets.sum() == 4


def test_windows_of_the_training_distribution_never_trigger(reference: Reference) -> None:
    """Default thresholds, 100 seeded trials of 4 windows each drawn from the training
    distribution: at most one trial may trigger (the issue's 99 of 100)."""
    thresholds = DriftThresholds(window=1000)
    triggered_trials = 0
    worst: dict[str, float] = {}
    for seed in range(100):
        monitor = DriftMonitor(reference, thresholds)
        reports = feed(monitor, np.random.default_rng(seed), 4 * thresholds.window)
        assert len(reports) == 4
        triggered_trials += any(r.triggered for r in reports)
        for r in reports:
            for k, v in r.statistics.items():
                worst[k] = max(worst.get(k, 0.0), v)
    assert triggered_trials <= 1, worst
    # Far below the thresholds, not just under them.
    assert worst["popularity_psi"] < thresholds.popularity_psi / 2, worst


def test_a_shift_of_taste_triggers_after_the_consecutive_windows(reference: Reference) -> None:
    """70% of the traffic moves to 100 items the training data barely knew (a genre
    becoming popular): popularity breaches every window and triggers on the third."""
    rng = np.random.default_rng(7)
    shifted = POPULARITY * 0.3
    shifted[2000:2100] += 0.7 / 100
    monitor = DriftMonitor(reference, DriftThresholds(window=500, consecutive=3))
    reports = feed(monitor, rng, 1500, popularity=shifted)
    assert [sorted(r.breached & {"popularity_psi", "popularity_linf"}) for r in reports] == [
        ["popularity_linf", "popularity_psi"]
    ] * 3
    assert [bool(r.triggered) for r in reports] == [False, False, True]
    assert reports[-1].statistics["popularity_psi"] > 0.25
    assert "length_psi" not in reports[-1].breached  # only what moved breaches
    # Back to the training distribution: the run ends at the next window.
    back = feed(monitor, rng, 500)
    assert back[0].triggered == frozenset() and monitor.runs["popularity_psi"] == 0


def test_a_trend_among_mid_catalogue_titles_moves_a_band(reference: Reference) -> None:
    """Titles ranked 300-340 (outside the 50 top items, inside the 200-400 band) take 70%
    of the newest items: one "other" bucket would barely move, the band does."""
    trend = reference.top_items[300:340] - 1
    shifted = POPULARITY * 0.3
    shifted[trend] += 0.7 / trend.size
    monitor = DriftMonitor(reference, DriftThresholds(window=500, consecutive=1))
    report = feed(monitor, np.random.default_rng(5), 500, popularity=shifted)[0]
    assert {"popularity_psi", "popularity_linf"} <= report.triggered
    band = monitor.reference.popularity[52] / monitor.reference.popularity.sum()
    assert report.statistics["popularity_linf"] == pytest.approx(0.7 * (1 - band), abs=0.08)


def test_unknown_items_cold_starts_and_scores(reference: Reference) -> None:
    rng = np.random.default_rng(11)
    monitor = DriftMonitor(reference, DriftThresholds(window=500, consecutive=1))
    first = feed(monitor, rng, 500)[0]
    assert first.statistics["score_psi"] == 0.0  # the first window is the scores' reference
    assert first.statistics["unknown_item_rate"] == 0.0
    assert 0.0 < first.statistics["coverage"] <= 1.0
    moved = feed(monitor, rng, 500, unknown_rate=0.2, fallback_rate=0.4, score_shift=1.5)[0]
    assert {"unknown_item_rate", "cold_start_share", "score_psi"} <= moved.triggered
    assert moved.statistics["unknown_item_rate"] == pytest.approx(0.2, abs=0.02)
    assert moved.statistics["cold_start_share"] == pytest.approx(0.4, abs=0.06)


def test_thresholds_refuse_windows_too_small_to_judge() -> None:
    with pytest.raises(ValidationError, match="window"):
        DriftThresholds(window=10)
    with pytest.raises(ValidationError, match="consecutive"):
        DriftThresholds.model_validate({"consecutive": 0})
