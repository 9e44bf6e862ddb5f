"""A served model version: its engine, id maps, batcher and the top-k step.

Loading checks the artifact before anything serves from it: the engine loader verifies
every file's sha256; here the id maps must match the manifest's input spec and a warm-up
batch must return scores of the declared shape. A version that fails any check is never
registered, so the versions already serving keep serving.
"""

from __future__ import annotations

import json
import logging
import queue
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from recops_contracts.drift import DriftThresholds
from recops_contracts.engine_manifest import EngineManifest
from recops_runtime.api.errors import ServiceError, Status
from recops_runtime.engines.base import Engine, IntArray
from recops_runtime.engines.padding import BUCKET as LENGTH_BUCKET
from recops_runtime.scoring.batcher import BatchStats, DynamicBatcher
from recops_runtime.telemetry.series import RuntimeMetrics
from recops_runtime.telemetry.traffic_drift import (
    REFERENCE_FILE as DRIFT_REFERENCE_FILE,
    DriftMonitor,
    Reference,
)

log = logging.getLogger(__name__)

EngineLoader = Callable[[Path, "int | None"], Engine]
NO_ITEMS = np.zeros(0, dtype=np.int64)


@dataclass(slots=True)
class ScoreJob:
    user: int  # internal user id, 0 when unknown
    history: IntArray  # internal item ids, oldest first, at least one
    exclude: IntArray  # internal item ids never to return
    k: int


@dataclass(slots=True)
class ScoreResult:
    items: IntArray  # internal item ids, best first
    scores: np.ndarray


@dataclass(frozen=True, slots=True)
class IdMaps:
    users: dict[str, int]
    items: dict[str, int]
    item_names: list[str]  # index = internal id; index 0 is padding
    popular: IntArray  # internal ids by descending popularity

    @classmethod
    def read(cls, path: Path, manifest: EngineManifest) -> IdMaps:
        try:
            raw = json.loads(path.read_text())
        except (OSError, ValueError) as exc:  # a position in the file, not its content
            raise ValueError(f"unreadable id maps {path.name}: {exc}") from exc
        try:
            users = [str(u) for u in raw["users"]]
            items = [str(i) for i in raw["items"]]
            popular = np.asarray(raw.get("popular_items", []), dtype=np.int64)
        except (ValueError, KeyError, TypeError) as exc:
            # Named by field, never quoting a value: the admin API returns this message.
            raise ValueError(
                f"id maps {path.name} need 'users' and 'items' lists and 'popular_items' integers"
            ) from exc
        spec = manifest.input_spec
        if len(items) != spec.num_items:
            raise ValueError(
                f"id maps list {len(items)} items but the manifest's input_spec.num_items "
                f"is {spec.num_items}: the id maps belong to another model"
            )
        if popular.size and (popular.min() < 1 or popular.max() > spec.num_items):
            raise ValueError("popular_items holds ids outside 1..num_items")
        if not popular.size:
            popular = np.arange(1, spec.num_items + 1, dtype=np.int64)
        return cls(
            users={u: i for i, u in enumerate(users, start=1)},
            items={it: i for i, it in enumerate(items, start=1)},
            item_names=["", *items],
            popular=popular,
        )


class ModelVersion:
    """Loaded engine workers behind one batcher, each worker with its own thread.

    Every worker is a separate engine instance owned by one thread at a time, so engines
    need not be thread-safe; the batcher runs up to one batch per worker at once.
    """

    def __init__(
        self,
        name: str,
        engine_dir: Path,
        engines: Sequence[Engine],
        id_maps: IdMaps,
        metrics: RuntimeMetrics,
        *,
        max_batch_size: int,
        max_batch_delay_s: float,
        max_queue: int,
        inline_lone: bool = True,
    ) -> None:
        self.name = name
        self.engine_dir = engine_dir
        if not engines:
            raise ValueError("a version needs at least one engine")
        self.engines = list(engines)
        self.manifest = engines[0].manifest
        self.ids = id_maps
        self.target = self.manifest.target
        self.model_version = self.manifest.model_version
        self.maxlen = self.manifest.input_spec.maxlen
        self.num_items = self.manifest.input_spec.num_items
        self.ready = False
        # Traffic against the training data (None: the engine folder has no reference).
        self.drift: DriftMonitor | None = None
        # (seconds per engine call, seconds per row and history position), from warm-up.
        self._cost: tuple[float, float] | None = None
        # One thread per engine: Engine.score is safe from one thread at a time, and a
        # batch takes a free engine from the pool (never waits: at most one batch runs
        # per engine).
        self._free: queue.SimpleQueue[Engine] = queue.SimpleQueue()
        for engine in self.engines:
            self._free.put(engine)
        self._executor = ThreadPoolExecutor(len(self.engines), thread_name_prefix=f"engine-{name}")
        batch_hist = metrics.batch_size.labels(name, self.target)
        depth = metrics.queue_depth.labels(name)
        self.batcher: DynamicBatcher[ScoreJob, ScoreResult] = DynamicBatcher(
            self.run_batch,
            executor=self._executor,
            max_batch_size=max_batch_size,
            max_batch_delay_s=max_batch_delay_s,
            max_queue=max_queue,
            concurrency=len(self.engines),
            inline_lone=inline_lone,
            stats=BatchStats(on_batch=batch_hist.observe, on_depth=depth.set),
        )

    def run_batch(self, jobs: Sequence[ScoreJob]) -> list[ScoreResult]:
        """Scores a batch and picks each row's top k (runs in the engine thread).

        An engine that drops leading padding costs about ``rows x longest history``, so a
        mixed batch is sorted by history length and cut into groups where that saves
        more than the extra engine calls cost (see :func:`split_by_length`).
        """
        if len(jobs) == 1 or self._cost is None:
            return self._run_group(jobs)
        order = sorted(range(len(jobs)), key=lambda i: jobs[i].history.size)
        lengths = [_bucket(jobs[i].history.size, self.maxlen) for i in order]
        results: list[ScoreResult | None] = [None] * len(jobs)
        start = 0
        for end in split_by_length(lengths, *self._cost):
            group = order[start:end]
            for index, result in zip(group, self._run_group([jobs[i] for i in group]), strict=True):
                results[index] = result
            start = end
        return [r for r in results if r is not None]

    def _run_group(self, jobs: Sequence[ScoreJob]) -> list[ScoreResult]:
        size, maxlen = len(jobs), self.maxlen
        history = np.zeros((size, maxlen), dtype=np.int64)
        users = np.empty(size, dtype=np.int64)
        for row, job in enumerate(jobs):
            recent = job.history[-maxlen:]
            history[row, maxlen - recent.size :] = recent
            users[row] = job.user
        engine = self._free.get()
        try:
            scores = engine.score(users, history)
        finally:
            self._free.put(engine)
        if scores.dtype != np.float32 or not (scores.flags.owndata and scores.flags.writeable):
            # Exclusions are written into the scores below: never into an engine's buffer.
            scores = np.array(scores, dtype=np.float32, copy=True)
        if scores.shape != (size, self.num_items + 1):
            raise ServiceError(
                Status.INTERNAL,
                f"engine returned scores of shape {scores.shape}, "
                f"expected {(size, self.num_items + 1)}",
            )
        scores[:, 0] = -np.inf  # padding is never an item
        for row, job in enumerate(jobs):
            if job.exclude.size:
                scores[row, job.exclude] = -np.inf
        kmax = min(max(job.k for job in jobs), self.num_items)
        top = np.argpartition(scores, -kmax, axis=1)[:, -kmax:]
        top_scores = np.take_along_axis(scores, top, axis=1)
        order = np.argsort(-top_scores, axis=1, kind="stable")
        top = np.take_along_axis(top, order, axis=1)
        top_scores = np.take_along_axis(top_scores, order, axis=1)
        results = []
        for row, job in enumerate(jobs):
            row_scores = top_scores[row, : job.k]
            keep = np.isfinite(row_scores)
            results.append(ScoreResult(top[row, : job.k][keep], row_scores[keep]))
        return results

    def warm_up(self) -> None:
        """Runs lone requests and full batches on every worker, so first requests pay no
        start-up cost (and a worker that returns the wrong shape is refused here).

        For an engine that drops leading padding it also times a short and a full-length
        history, the cost model :func:`split_by_length` uses.
        """
        short = ScoreJob(0, self.ids.popular[:1].copy(), NO_ITEMS, 10)
        full = ScoreJob(0, np.resize(self.ids.popular, self.maxlen), NO_ITEMS, 10)
        for _ in self.engines:  # the pool hands out its engines in turn
            for job in (short, full):
                self._run_group([job] * self.batcher.max_batch_size)
        if self.manifest.input_spec.dynamic_length and self.maxlen > LENGTH_BUCKET:
            t_short = _median_time(lambda: self._run_group([short]))
            t_full = _median_time(lambda: self._run_group([full]))
            per_position = max(1e-9, (t_full - t_short) / (self.maxlen - LENGTH_BUCKET))
            per_call = max(0.0, t_short - LENGTH_BUCKET * per_position)
            self._cost = (per_call, per_position)
        self.ready = True

    def fallback(self, exclude: IntArray, k: int) -> ScoreResult:
        """The most popular items, minus exclusions (cold start)."""
        popular = self.ids.popular
        if exclude.size:
            popular = popular[~np.isin(popular, exclude)]
        top = popular[:k]
        scores = 1.0 - np.arange(top.size, dtype=np.float32) / max(1, popular.size)
        return ScoreResult(top, scores)

    async def close(self) -> None:
        """Answers everything queued, then frees the engine."""
        await self.batcher.drain()
        self._executor.shutdown(wait=True)
        for engine in self.engines:
            engine.close()


def _bucket(length: int, maxlen: int) -> int:
    """The history length an engine that drops leading padding actually runs."""
    return min(maxlen, max(LENGTH_BUCKET, -(-length // LENGTH_BUCKET) * LENGTH_BUCKET))


def _median_time(call: Callable[[], object], repeats: int = 5) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        call()
        times.append(time.perf_counter() - started)
    return sorted(times)[len(times) // 2]


def split_by_length(lengths: Sequence[int], per_call: float, per_position: float) -> list[int]:
    """Ends of the groups that minimise the cost of scoring histories sorted by length.

    A group costs ``per_call + rows x longest x per_position``; dynamic programming over
    the sorted lengths finds the cheapest cut (batches are small, so O(n^2) is cheap).
    """
    best = [0.0] + [float("inf")] * len(lengths)
    cut = [0] * (len(lengths) + 1)
    for end in range(1, len(lengths) + 1):
        longest = lengths[end - 1]
        for start in range(end):
            cost = best[start] + per_call + (end - start) * longest * per_position
            if cost < best[end]:
                best[end], cut[end] = cost, start
    ends, end = [], len(lengths)
    while end > 0:
        ends.append(end)
        end = cut[end]
    return ends[::-1]


def open_version(
    name: str,
    engine_dir: Path,
    loader: EngineLoader,
    metrics: RuntimeMetrics,
    *,
    threads: int | None,
    max_batch_size: int,
    max_batch_delay_s: float,
    max_queue: int,
    workers: int = 1,
    inline_lone: bool = True,
    drift: DriftThresholds | None = None,
) -> ModelVersion:
    """Loads, checks and warms up a version (blocking: call it from a worker thread).

    ``workers`` engine instances are loaded; each verifies the artifact on its own.
    """
    engines: list[Engine] = []
    try:
        for _ in range(max(1, workers)):
            engines.append(loader(engine_dir, threads))
        manifest = engines[0].manifest
        id_maps = IdMaps.read(engine_dir / manifest.id_maps, manifest)
        version = ModelVersion(
            name,
            engine_dir,
            engines,
            id_maps,
            metrics,
            max_batch_size=max_batch_size,
            max_batch_delay_s=max_batch_delay_s,
            max_queue=max_queue,
            inline_lone=inline_lone,
        )
        reference = engine_dir / DRIFT_REFERENCE_FILE
        if drift is not None and reference.is_file():
            version.drift = DriftMonitor(Reference.load(reference), drift)
        version.warm_up()
    except Exception as exc:
        for engine in engines:
            engine.close()
        raise ServiceError(
            Status.FAILED_PRECONDITION, f"engine at {engine_dir} refused: {exc}"
        ) from exc
    log.info(
        "loaded %s from %s (%s, model %s)", name, engine_dir, version.target, version.model_version
    )
    return version
