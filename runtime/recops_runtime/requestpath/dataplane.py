"""The request path: everything a request needs, whatever its wire format.

Validation, version choice (from the registry's traffic split), history lookup, batching,
top-k with exclusions, the per-user top-k cache, cold-start fallback, drift observation,
metrics and the feedback log live here; the gRPC servicer and the HTTP app only convert
messages and map :class:`ServiceError` statuses. Admin calls (traffic split, loading and
unloading versions) go to :class:`~recops_runtime.registry.version_registry.VersionRegistry`,
which this module only reads.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass

import numpy as np

from recops_contracts.feedback import INTERACTION_EVENTS, FeedbackRecord, RecommendationRecord
from recops_runtime.api.errors import ServiceError, Status
from recops_runtime.api.messages import (
    FeedbackRequest,
    FeedbackResponse,
    ModelInfo,
    RecommendRequest,
    RecommendResponse,
    ScoredItem,
    VersionInfo,
)
from recops_runtime.registry.version_registry import VersionRegistry
from recops_runtime.scoring.model_version import NO_ITEMS, ModelVersion, ScoreJob, ScoreResult
from recops_runtime.serve_settings import DEFAULT_ATTRIBUTION_WINDOW_S, DEFAULT_STORE_BYTES
from recops_runtime.stores.feedback_log import FeedbackLog
from recops_runtime.stores.history import HistoryStore, InMemoryHistoryStore
from recops_runtime.stores.served import LocalServedLists, Served, ServedLists
from recops_runtime.stores.topk_cache import TopKCache, cache_key
from recops_runtime.telemetry.series import UNVERSIONED
from recops_runtime.telemetry.traffic_drift import DriftMonitor, IntArray

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Scored:
    """A request's answer and what drift monitoring reads of it."""

    result: ScoreResult
    fallback: str  # the fallback's reason, "" when the model answered
    known: IntArray  # the history's items the model knows (internal ids, oldest first)
    unknown: int  # history items it does not know


class DataPlane:
    """Answers Recommend, Feedback and GetModelInfo from the versions the registry holds."""

    def __init__(
        self,
        registry: VersionRegistry,
        *,
        history: HistoryStore | None = None,
        feedback_log: FeedbackLog | None = None,
        history_limit: int = 200,
        served: ServedLists | None = None,
        topk_cache_users: int = 0,
        topk_cache_bytes: int = DEFAULT_STORE_BYTES,
        attribution_window_s: float = DEFAULT_ATTRIBUTION_WINDOW_S,
    ) -> None:
        self.registry = registry
        self.attribution_window_s = attribution_window_s
        self.metrics = registry.metrics  # one set of series per process, shared with loads
        # ``is None``, not ``or``: an empty store has no length, which is false.
        self.history = history if history is not None else InMemoryHistoryStore()
        self.feedback_log = feedback_log
        self._history_limit = history_limit
        self.topk_cache = (
            TopKCache(topk_cache_users, topk_cache_bytes) if topk_cache_users else None
        )
        self.served = served if served is not None else LocalServedLists()
        self.draining = False
        for name, store in (
            ("served", self.served),
            ("history", self.history),
            ("topk_cache", self.topk_cache),
        ):
            if isinstance(store, LocalServedLists | InMemoryHistoryStore | TopKCache):
                self.metrics.watch_store(name, store)

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
            versions = self.registry.versions
            name = request.version or self.registry.split.choose(request.user_id)
            if name not in versions:
                raise ServiceError(Status.NOT_FOUND, f"version: {name!r} is not loaded")
            history, source = request.history, "request"
            if not history:
                history, source = await self._stored_history(request.user_id)
            # Resolved after the await: a version swapped meanwhile serves from the new one.
            version = versions.get(name)
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

    def count_refused(self, status: Status) -> None:
        """A Recommend an adapter refused before it reached :meth:`recommend` (bytes or a
        body that does not parse into a request), counted as the data plane counts its
        own refusals."""
        self.metrics.requests.labels(UNVERSIONED, UNVERSIONED, status.value).inc()

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
        generation = self.registry.generation(version.name)
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
        now = time.time()
        served = Served(version.name, frozenset(item_ids), user_id=request.user_id, at=now)
        self.served.remember(request.request_id, served)
        if self.feedback_log is not None:
            served_record: RecommendationRecord = {
                "kind": "recommendation",
                "ts": now,
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
        found = await self._lookup_served(request.request_id)
        unattributed = self._unattributed(request, found)
        served = None if unattributed else found
        version = served.version if served else ""
        recommended = served is not None and request.item_id in served.items
        self.metrics.feedback_events.labels(version or UNVERSIONED, request.event).inc()
        if unattributed:
            self.metrics.feedback_unattributed.labels(request.event, unattributed).inc()
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
                "attributed": not unattributed,
            }
            self.feedback_log.append(record)
        return FeedbackResponse(recommended=recommended, version=version)

    def _unattributed(self, request: FeedbackRequest, served: Served | None) -> str:
        """Why feedback is not attributed to the recommendation it names ("" when it is):
        anyone may send feedback, so only the user the list was served to, within the
        window, makes an online hit or training data."""
        if not request.request_id:
            return "no_request_id"
        if served is None:
            return "unknown_request"  # evicted (byte budget), expired, or never served here
        if served.user_id != request.user_id:
            return "other_user"
        if time.time() - served.at > self.attribution_window_s:
            return "outside_window"
        return ""

    async def _lookup_served(self, request_id: str) -> Served | None:
        if not request_id:
            return None
        try:
            return await self.served.lookup(request_id)
        except Exception:  # a shared-store outage loses the join, not the feedback
            log.warning("served lists unavailable; feedback not joined", exc_info=True)
            return None

    def model_info(self) -> ModelInfo:
        registry = self.registry
        weights = registry.split.weights
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
                for v in sorted(registry.versions.values(), key=lambda v: v.name)
            ],
            sticky=registry.split.sticky,
        )

    @property
    def ready(self) -> bool:
        return self.registry.ready and not self.draining

    async def start(self) -> None:
        if self.feedback_log is not None:
            await self.feedback_log.start()

    async def drain(self) -> None:
        """Refuses new requests, answers every accepted one, then flushes the log."""
        self.draining = True
        await self.registry.close()
        if self.feedback_log is not None:
            await self.feedback_log.close()
        await self.history.close()
        await self.served.close()
