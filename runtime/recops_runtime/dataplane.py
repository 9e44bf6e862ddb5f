"""The protocol-agnostic data plane: everything a request needs, whatever its wire format.

Validation, version choice, history lookup, batching, top-k with exclusions, cold-start
fallback, metrics and the feedback log live here; the gRPC servicer and the HTTP app only
convert messages and map :class:`ServiceError` statuses. Admin operations (traffic split,
loading and unloading versions) are here too, so both adapters share them.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from recops_contracts.drift import DriftThresholds
from recops_contracts.feedback import INTERACTION_EVENTS, FeedbackRecord, RecommendationRecord
from recops_runtime.drift import DriftMonitor, IntArray
from recops_runtime.errors import ServiceError, Status
from recops_runtime.feedback_log import FeedbackLog
from recops_runtime.history import HistoryStore, InMemoryHistoryStore
from recops_runtime.messages import (
    FeedbackRequest,
    FeedbackResponse,
    ModelInfo,
    RecommendRequest,
    RecommendResponse,
    ScoredItem,
    VersionInfo,
)
from recops_runtime.metrics import UNVERSIONED, RuntimeMetrics
from recops_runtime.routing import TrafficSplit
from recops_runtime.served import LocalServedLists, Served, ServedLists
from recops_runtime.settings import BatchingSettings
from recops_runtime.topk_cache import TopKCache, cache_key
from recops_runtime.versions import (
    NO_ITEMS,
    EngineLoader,
    ModelVersion,
    ScoreJob,
    ScoreResult,
    open_version,
)

log = logging.getLogger(__name__)


def runs_on_gpu(engine_dir: Path) -> bool:
    """Whether the engine folder's target needs a GPU (False when unreadable: the loader
    refuses such a folder with the reason)."""
    from recops_runtime.engines.manifest import read_manifest
    from recops_runtime.engines.targets import get_target

    try:
        return get_target(read_manifest(engine_dir).target).needs_gpu
    except Exception:
        return False


def _default_loader() -> EngineLoader:
    from recops_runtime.engines import load_engine

    return load_engine


@dataclass(frozen=True, slots=True)
class Scored:
    """A request's answer and what drift monitoring reads of it."""

    result: ScoreResult
    fallback: str  # the fallback's reason, "" when the model answered
    known: IntArray  # the history's items the model knows (internal ids, oldest first)
    unknown: int  # history items it does not know


class DataPlane:
    def __init__(
        self,
        *,
        batching: BatchingSettings | None = None,
        metrics: RuntimeMetrics | None = None,
        history: HistoryStore | None = None,
        feedback_log: FeedbackLog | None = None,
        loader: EngineLoader | None = None,
        history_limit: int = 200,
        served: ServedLists | None = None,
        drift: DriftThresholds | None = None,
        topk_cache_users: int = 0,
    ) -> None:
        self.batching = batching or BatchingSettings()
        self.metrics = metrics or RuntimeMetrics()
        self.history = history or InMemoryHistoryStore()
        self.feedback_log = feedback_log
        self._loader = loader or _default_loader()
        self._history_limit = history_limit
        self.drift = drift or DriftThresholds()
        self.versions: dict[str, ModelVersion] = {}
        self.split = TrafficSplit({})
        self.topk_cache = TopKCache(topk_cache_users) if topk_cache_users else None
        # Bumped at every load of a version name: cached lists of the old engine never match.
        self._generations: dict[str, int] = {}
        self.served = served or LocalServedLists()
        self._load_lock = asyncio.Lock()
        self._staged: dict[str, ModelVersion] = {}
        self.draining = False

    # ---- requests -------------------------------------------------------------------

    async def recommend(
        self, request: RecommendRequest, deadline: float | None = None
    ) -> RecommendResponse:
        started = time.perf_counter()
        version_label = target_label = UNVERSIONED
        try:
            if self.draining:
                raise ServiceError(Status.UNAVAILABLE, "server is shutting down")
            request.validate()
            name = request.version or self.split.choose(request.user_id)
            if name not in self.versions:
                raise ServiceError(Status.NOT_FOUND, f"version: {name!r} is not loaded")
            history, source = request.history, "request"
            if not history:
                history, source = await self._stored_history(request.user_id)
            # Resolved after the await: a version swapped meanwhile serves from the new one.
            version = self.versions.get(name)
            if version is None:
                raise ServiceError(Status.NOT_FOUND, f"version: {name!r} is not loaded")
            version_label, target_label = version.name, version.target
            scored = await self._score(version, request, history, source, deadline)
            result, fallback = scored.result, scored.fallback
            response = self._respond(version, request, result, fallback, source)
            if version.drift is not None:
                self._observe_drift(version, version.drift, scored)
            series = self.metrics.served(version_label, target_label)
            series.recommendations.inc()
        except ServiceError as exc:
            self.metrics.requests.labels(version_label, target_label, exc.status.value).inc()
            raise
        except asyncio.CancelledError:
            self.metrics.requests.labels(version_label, target_label, "CANCELLED").inc()
            raise
        except Exception as exc:
            log.exception("Recommend failed")
            self.metrics.requests.labels(version_label, target_label, "INTERNAL").inc()
            raise ServiceError(Status.INTERNAL, f"internal error: {type(exc).__name__}") from exc
        series.ok.inc()
        series.latency.observe(time.perf_counter() - started)
        return response

    async def _stored_history(self, user_id: str) -> tuple[list[str], str]:
        # A history store outage degrades answers to the popularity fallback, never fails them.
        try:
            history = await self.history.recent(user_id, self._history_limit)
        except Exception:
            log.warning("history store unavailable; answering without history", exc_info=True)
            return [], "unavailable"
        return history, "store" if history else "none"

    async def _score(
        self,
        version: ModelVersion,
        request: RecommendRequest,
        history: list[str],
        source: str,
        deadline: float | None,
    ) -> Scored:
        lookup = version.ids.items.get
        mapped = np.fromiter((lookup(i, 0) for i in history), np.int64, len(history))
        known = mapped[mapped > 0]  # 0: an id the model does not know
        unknown = int(mapped.size - known.size)
        if unknown:
            self.metrics.unknown_items.labels(version.name).inc(unknown)
        exclude = known if request.exclude_seen else NO_ITEMS
        if request.exclude_items:
            listed = np.fromiter((lookup(i, 0) for i in request.exclude_items), np.int64)
            exclude = np.concatenate([exclude, listed[listed > 0]])
        user = version.ids.users.get(request.user_id, 0)
        if not known.size:
            if request.history:
                reason = "unknown_items"
            elif source == "unavailable":
                reason = "history_unavailable"
            else:
                reason = "empty_history" if user else "unknown_user"
            self.metrics.fallbacks.labels(version.name, reason).inc()
            return Scored(version.fallback(exclude, request.k), reason, known, unknown)
        job = ScoreJob(user, known, exclude, request.k)
        cache = self.topk_cache
        if cache is None or not request.user_id:
            return Scored(await version.batcher.submit(job, deadline), "", known, unknown)
        generation = self._generations.get(version.name, 0)
        key = cache_key(version.name, generation, user, known, exclude, request.k)
        cached = cache.get(request.user_id, key)
        self.metrics.topk_cache(version.name, hit=cached is not None)
        if cached is None:
            cached = await version.batcher.submit(job, deadline)
            cache.put(request.user_id, key, cached)
        return Scored(cached, "", known, unknown)

    def _observe_drift(self, version: ModelVersion, monitor: DriftMonitor, scored: Scored) -> None:
        result = scored.result
        top1 = float(result.scores[0]) if result.scores.size and not scored.fallback else None
        report = monitor.observe(
            scored.known, scored.unknown, result.items, top1, fallback=bool(scored.fallback)
        )
        if report is not None:
            self.metrics.drift_window(version.name, report)
            if report.triggered:
                log.warning(
                    "version %s drifted from its training data: %s",
                    version.name,
                    ", ".join(f"{k}={report.statistics[k]:.3f}" for k in sorted(report.triggered)),
                )

    def _respond(
        self,
        version: ModelVersion,
        request: RecommendRequest,
        result: ScoreResult,
        fallback: str,
        source: str,
    ) -> RecommendResponse:
        names = version.ids.item_names
        items = [
            ScoredItem(names[i], s)
            for i, s in zip(result.items.tolist(), result.scores.tolist(), strict=True)
        ]
        item_ids = [item.item_id for item in items]
        self.served.remember(request.request_id, Served(version.name, frozenset(item_ids)))
        if self.feedback_log is not None:
            served_record: RecommendationRecord = {
                "kind": "recommendation",
                "ts": time.time(),
                "request_id": request.request_id,
                "user_id": request.user_id,
                "version": version.name,
                "target": version.target,
                "model_version": version.model_version,
                "items": item_ids,
                "fallback": fallback or None,
                "history_source": source,
            }
            self.feedback_log.append(served_record)
        return RecommendResponse(
            items=items,
            request_id=request.request_id,
            version=version.name,
            target=version.target,
            model_version=version.model_version,
            fallback_reason=fallback,
        )

    async def feedback(self, request: FeedbackRequest) -> FeedbackResponse:
        try:
            return await self._feedback(request)
        except ServiceError:
            raise
        except Exception as exc:
            log.exception("Feedback failed")
            raise ServiceError(Status.UNAVAILABLE, f"feedback not stored: {exc}") from exc

    async def _feedback(self, request: FeedbackRequest) -> FeedbackResponse:
        request.validate()
        served = await self._lookup_served(request.request_id)
        version = served.version if served else ""
        recommended = served is not None and request.item_id in served.items
        self.metrics.feedback_events.labels(version or UNVERSIONED, request.event).inc()
        # A click on a recommended item is an online hit; a repeated click is still one.
        if (
            request.event == "click"
            and served is not None
            and recommended
            and await self.served.first_hit(request.request_id, served, request.item_id)
        ):
            self.metrics.online_hits.labels(version).inc()
        # The user consumed the item; an impression does not enter the history.
        if request.event in INTERACTION_EVENTS:
            await self.history.append(request.user_id, request.item_id)
        if self.feedback_log is not None:
            record: FeedbackRecord = {
                "kind": "feedback",
                "ts": request.timestamp or time.time(),
                "request_id": request.request_id,
                "user_id": request.user_id,
                "version": version,
                "item_id": request.item_id,
                "event": request.event,
                "value": request.value,
                "recommended": recommended,
            }
            self.feedback_log.append(record)
        return FeedbackResponse(recommended=recommended, version=version)

    async def _lookup_served(self, request_id: str) -> Served | None:
        if not request_id:
            return None
        try:
            return await self.served.lookup(request_id)
        except Exception:  # a shared-store outage loses the join, not the feedback
            log.warning("served lists unavailable; feedback not joined", exc_info=True)
            return None

    def model_info(self) -> ModelInfo:
        weights = self.split.weights
        return ModelInfo(
            versions=[
                VersionInfo(
                    version=v.name,
                    target=v.target,
                    model_version=v.model_version,
                    precision=v.manifest.precision,
                    num_items=v.num_items,
                    num_users=v.manifest.input_spec.num_users,
                    maxlen=v.maxlen,
                    weight=weights.get(v.name, 0),
                    ready=v.ready,
                    engine_dir=str(v.engine_dir),
                )
                for v in sorted(self.versions.values(), key=lambda v: v.name)
            ],
            sticky=self.split.sticky,
        )

    @property
    def ready(self) -> bool:
        return (
            bool(self.versions)
            and not self.draining
            and all(v.ready for v in self.versions.values())
        )

    # ---- admin ----------------------------------------------------------------------

    def traffic(self) -> dict[str, Any]:
        return {"weights": self.split.weights, "sticky": self.split.sticky}

    def set_traffic(self, weights: Mapping[str, int], sticky: bool | None = None) -> None:
        self.split.set(
            weights,
            sticky=self.split.sticky if sticky is None else sticky,
            known=self.versions.keys(),
        )
        log.info("traffic split now %s (sticky=%s)", self.split.weights, self.split.sticky)

    async def load_version(self, name: str, engine_dir: Path) -> ModelVersion:
        """Loads (or replaces) a version; requests keep flowing to the old one meanwhile."""
        await self.stage_version(name, engine_dir)
        return await self.commit_version(name)

    async def stage_version(self, name: str, engine_dir: Path) -> ModelVersion:
        """Loads, checks and warms up a version without serving it yet.

        The first half of a two-phase load: a server of several processes stages the
        version in every process (the slow step, and the one that can fail) before any of
        them serves it, then commits it everywhere (:meth:`commit_version`).
        """
        if not name or len(name) > 63:
            raise ServiceError(Status.INVALID_ARGUMENT, "version: 1 to 63 characters")
        if not engine_dir.is_dir():
            raise ServiceError(Status.INVALID_ARGUMENT, f"engineDir: {engine_dir} is not a folder")
        async with self._load_lock:
            loop = asyncio.get_running_loop()
            b = self.batching
            workers = b.resolved_engine_workers(gpu=runs_on_gpu(engine_dir))
            new = await loop.run_in_executor(
                None,
                lambda: open_version(
                    name,
                    engine_dir,
                    self._loader,
                    self.metrics,
                    workers=workers,
                    threads=b.resolved_engine_threads(workers),
                    max_batch_size=b.max_batch_size,
                    max_batch_delay_s=b.max_batch_delay_ms / 1000.0,
                    max_queue=b.max_queue,
                    inline_lone=b.inline_lone_requests,
                    drift=self.drift,
                ),
            )
            replaced = self._staged.pop(name, None)
            self._staged[name] = new
        if replaced is not None:
            await replaced.close()
        return new

    async def commit_version(self, name: str) -> ModelVersion:
        """Serves a staged version (replacing one of the same name); cannot fail once
        staged, so every process of a server switches together."""
        async with self._load_lock:
            new = self._staged.pop(name, None)
            if new is None:
                raise ServiceError(Status.NOT_FOUND, f"version: {name!r} is not staged")
            new.batcher.start()
            old = self.versions.get(name)
            self.versions[name] = new  # the swap: new requests go to the new engine
            self._generations[name] = self._generations.get(name, 0) + 1
            self.split.add(name)
            self.metrics.version_loaded(name, new.target, new.model_version)
        if old is not None:
            if (old.target, old.model_version) != (new.target, new.model_version):
                self.metrics.version_unloaded(name, old.target, old.model_version)
            await old.close()  # answers what it had already accepted
        return new

    async def discard_staged(self, name: str) -> bool:
        """Frees a staged version that will not be committed; False when none was."""
        async with self._load_lock:
            staged = self._staged.pop(name, None)
        if staged is None:
            return False
        await staged.close()
        return True

    async def unload_version(self, name: str) -> None:
        async with self._load_lock:
            version = self.versions.get(name)
            if version is None:
                raise ServiceError(Status.NOT_FOUND, f"version: {name!r} is not loaded")
            self.split.remove(name)
            del self.versions[name]
            self.metrics.version_unloaded(name, version.target, version.model_version)
        await version.close()

    async def start(
        self,
        engines: Mapping[str, Path],
        weights: Mapping[str, int] | None = None,
        sticky: bool = False,
    ) -> None:
        if self.feedback_log is not None:
            await self.feedback_log.start()
        for name, path in engines.items():
            await self.load_version(name, path)
        if weights is not None:
            self.set_traffic(weights, sticky)
        else:
            self.split.sticky = sticky

    async def drain(self) -> None:
        """Refuses new requests, answers every accepted one, then flushes the log."""
        self.draining = True
        staged, self._staged = list(self._staged.values()), {}
        await asyncio.gather(*(v.close() for v in [*self.versions.values(), *staged]))
        if self.feedback_log is not None:
            await self.feedback_log.close()
        await self.history.close()
        await self.served.close()
