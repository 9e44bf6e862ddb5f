"""The version registry: which versions are loaded, and the traffic split between them.

Every admin call lands here: set the traffic split, load (or hot-swap) a version, stage
and commit one in two phases, unload one. The request path only reads the registry (the
versions and the split) and never changes it, as MLServer keeps its model registry apart
from its data plane.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from recops_contracts.drift import DriftThresholds
from recops_runtime.api.errors import ServiceError, Status
from recops_runtime.registry.traffic import TrafficSplit
from recops_runtime.scoring.model_version import EngineLoader, ModelVersion, open_version
from recops_runtime.serve_settings import BatchingSettings
from recops_runtime.telemetry.series import RuntimeMetrics

log = logging.getLogger(__name__)

# Version names are DNS labels: they appear in URL paths (``DELETE /admin/v1/versions/{v}``),
# health service names (``recops.v1.Recommender/<v>``) and metric labels, where a '/' or an
# upper-case twin would make a version that cannot be addressed or deleted.
VERSION_NAME = re.compile(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?")
VERSION_NAME_RULE = (
    "1 to 63 lowercase letters, digits and '-', starting and ending with a letter or digit"
)


def check_version_name(name: str) -> None:
    """Raises INVALID_ARGUMENT naming the field and the rule unless ``name`` follows it."""
    if not VERSION_NAME.fullmatch(name):
        raise ServiceError(
            Status.INVALID_ARGUMENT, f"version: {VERSION_NAME_RULE} (a DNS label), got {name!r}"
        )


# One answer for every engineDir outside the roots, existing or not, so the admin API
# cannot be used to probe the server's filesystem.
OUTSIDE_ROOTS = "engineDir: not an engine folder under the server's engines root (--engines-root)"


def confine_engine_dir(engine_dir: Path, roots: Sequence[Path]) -> Path:
    """``engine_dir`` with symlinks and '..' resolved, when that lies in one of ``roots``;
    INVALID_ARGUMENT otherwise (no roots: no confinement)."""
    try:
        resolved = engine_dir.resolve()
    except (OSError, RuntimeError) as exc:  # RuntimeError: a symlink loop
        raise ServiceError(Status.INVALID_ARGUMENT, OUTSIDE_ROOTS) from exc
    if roots and not any(resolved.is_relative_to(root) for root in roots):
        raise ServiceError(Status.INVALID_ARGUMENT, OUTSIDE_ROOTS)
    return resolved


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


class VersionRegistry:
    def __init__(
        self,
        *,
        batching: BatchingSettings | None = None,
        metrics: RuntimeMetrics | None = None,
        loader: EngineLoader | None = None,
        drift: DriftThresholds | None = None,
        engines_roots: Sequence[Path] = (),
    ) -> None:
        self.batching = batching or BatchingSettings()
        # Resolved once: the folders every engineDir must lie in (empty: anywhere).
        self.engines_roots = tuple(root.resolve() for root in engines_roots)
        self.metrics = metrics or RuntimeMetrics()
        self._loader = loader or _default_loader()
        self.drift = drift or DriftThresholds()
        self.versions: dict[str, ModelVersion] = {}
        self.split = TrafficSplit({})
        # Bumped at every load of a version name: cached lists of the old engine never match.
        self._generations: dict[str, int] = {}
        self._load_lock = asyncio.Lock()
        self._staged: dict[str, ModelVersion] = {}

    def generation(self, name: str) -> int:
        """How many times ``name`` was loaded: part of every cached list's key."""
        return self._generations.get(name, 0)

    @property
    def ready(self) -> bool:
        """At least one version, and every version warmed up."""
        return bool(self.versions) and all(v.ready for v in self.versions.values())

    def traffic(self) -> dict[str, Any]:
        return {"weights": self.split.weights, "sticky": self.split.sticky}

    def set_traffic(self, weights: Mapping[str, int], sticky: bool | None = None) -> None:
        self.split.set(
            weights,
            sticky=self.split.sticky if sticky is None else sticky,
            known=self.versions.keys(),
        )
        log.info("traffic split now %s (sticky=%s)", self.split.weights, self.split.sticky)

    async def load_all(
        self,
        engines: Mapping[str, Path],
        weights: Mapping[str, int] | None = None,
        sticky: bool = False,
    ) -> None:
        """The start-up load: every configured version, then the split."""
        for name, path in engines.items():
            await self.load_version(name, path)
        if weights is not None:
            self.set_traffic(weights, sticky)
        else:
            self.split.sticky = sticky

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
        check_version_name(name)
        engine_dir = confine_engine_dir(engine_dir, self.engines_roots)
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

    async def close(self) -> None:
        """Every version, staged ones included, answers what it accepted and stops."""
        staged, self._staged = list(self._staged.values()), {}
        await asyncio.gather(*(v.close() for v in [*self.versions.values(), *staged]))
