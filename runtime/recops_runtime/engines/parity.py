"""Parity of an engine against the cpu-torch reference on real users.

Rankings are compared as a user would see them: padding and the items already in the
user's history are excluded (the served list never repeats them), except the item the
user chose next, whose rank gives NDCG@10 on the evaluation split.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from recops_contracts.engine_manifest import ParityResult
from recops_runtime.engines.base import FloatArray, IntArray
from recops_runtime.engines.errors import ParityError
from recops_runtime.engines.evaluation import UserSequences
from recops_runtime.engines.targets import ParityThreshold

ScoreFn = Callable[[IntArray, IntArray], FloatArray]
TOP_K = 10
CHUNK = 64


def score_all(score: ScoreFn, users: UserSequences, chunk: int = CHUNK) -> FloatArray:
    """Scores for every user, in batches of ``chunk``."""
    parts = [
        np.asarray(score(users.user_ids[i : i + chunk], users.history[i : i + chunk]), np.float32)
        for i in range(0, len(users), chunk)
    ]
    return np.concatenate(parts, axis=0)


def _mask_seen(scores: FloatArray, users: UserSequences) -> FloatArray:
    masked = scores.astype(np.float32, copy=True)
    rows = np.arange(len(users))[:, None]
    masked[rows, users.history] = -np.inf
    masked[:, 0] = -np.inf
    targets = users.targets
    known = targets > 0
    masked[np.arange(len(users))[known], targets[known]] = scores[
        np.arange(len(users))[known], targets[known]
    ]
    return masked


def _top_k(masked: FloatArray, k: int) -> IntArray:
    return np.argpartition(-masked, k, axis=1)[:, :k].astype(np.int64)


def _ndcg(masked: FloatArray, targets: IntArray, k: int) -> float:
    known = targets > 0
    if not known.any():
        return 0.0
    rows = np.arange(masked.shape[0])[known]
    target_scores = masked[rows, targets[known]]
    ranks = (masked[known] > target_scores[:, None]).sum(axis=1)
    gains = np.where(ranks < k, 1.0 / np.log2(ranks + 2.0), 0.0)
    return float(gains.mean())


def ndcg10(scores: FloatArray, users: UserSequences) -> float:
    """NDCG@10 of the users' next items under ``scores`` (seen items excluded)."""
    return _ndcg(_mask_seen(scores, users), users.targets, TOP_K)


def compare(reference: FloatArray, engine: FloatArray, users: UserSequences) -> ParityResult:
    """Max absolute score difference, top-10 overlap and NDCG@10 of both, per user mean."""
    if reference.shape != engine.shape:
        raise ParityError(f"engine scores {engine.shape} but the reference {reference.shape}")
    if not np.isfinite(engine).all():
        raise ParityError("the engine returned NaN or infinite scores")
    ref_masked = _mask_seen(reference, users)
    eng_masked = _mask_seen(engine, users)
    ref_top = _top_k(ref_masked, TOP_K)
    eng_top = _top_k(eng_masked, TOP_K)
    overlap = np.mean(
        [
            len(np.intersect1d(a, b, assume_unique=True)) / TOP_K
            for a, b in zip(ref_top, eng_top, strict=True)
        ]
    )
    ndcg_ref = _ndcg(ref_masked, users.targets, TOP_K)
    ndcg_eng = _ndcg(eng_masked, users.targets, TOP_K)
    return ParityResult(
        users=len(users),
        max_abs_diff=float(np.max(np.abs(reference[:, 1:] - engine[:, 1:]))),
        top10_overlap=float(overlap),
        ndcg10_reference=ndcg_ref,
        ndcg10_engine=ndcg_eng,
        ndcg10_delta=ndcg_eng - ndcg_ref,
    )


def check(
    result: ParityResult, threshold: ParityThreshold, target: str, advice: str | None = None
) -> None:
    """Raise :class:`ParityError` naming every limit the result breaks.

    ``advice`` replaces the generic last sentence (what to do instead).
    """
    broken = []
    if result.top10_overlap < threshold.min_top10_overlap:
        broken.append(f"top-10 overlap {result.top10_overlap:.4f} < {threshold.min_top10_overlap}")
    if abs(result.ndcg10_delta) > threshold.max_ndcg10_delta:
        broken.append(
            f"NDCG@10 change {result.ndcg10_delta:+.4f} beyond +/-{threshold.max_ndcg10_delta}"
        )
    if threshold.max_abs_diff is not None and result.max_abs_diff > threshold.max_abs_diff:
        broken.append(f"max score difference {result.max_abs_diff:.3g} > {threshold.max_abs_diff}")
    if broken:
        raise ParityError(
            f"{target} engine fails parity with cpu-torch on {result.users} users: "
            + "; ".join(broken)
            + ". No engine was written; "
            + (advice or "use a more precise target or more calibration data.")
        )
