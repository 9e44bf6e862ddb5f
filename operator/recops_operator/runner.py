"""The operator process: Kopf with our settings, the injected clients and handler modules.

Handlers live in modules that expose ``register(registry, ctx)``; the operator registers
exactly the modules listed in ``HANDLER_MODULES`` (or those a caller passes), each into a
fresh registry, so tests and benchmarks run several operators side by side.
"""

from __future__ import annotations

import importlib
import logging
import random
from collections.abc import Sequence
from typing import Any, Protocol

import kopf

from recops_operator.clients.kubernetes import KubeClient, KubeConnection
from recops_operator.controllers.context import OperatorContext, build_context
from recops_operator.settings import OperatorSettings

HANDLER_MODULES: tuple[str, ...] = (
    "recops_operator.controllers.recmodel",
    "recops_operator.controllers.trainingrun",
    "recops_operator.controllers.rollout",
)
PREFIX = "recops.io"


class HandlerModule(Protocol):
    def register(self, registry: kopf.OperatorRegistry, ctx: OperatorContext) -> None: ...


def build_registry(
    ctx: OperatorContext, modules: Sequence[str] = HANDLER_MODULES
) -> kopf.OperatorRegistry:
    registry = kopf.OperatorRegistry()
    for module_name in modules:
        module: HandlerModule = importlib.import_module(module_name)
        if not callable(getattr(module, "register", None)):
            raise TypeError(f"handler module {module_name} has no register(registry, ctx)")
        module.register(registry, ctx)

    @kopf.on.login(registry=registry)
    def login(**_: Any) -> kopf.ConnectionInfo:
        c = ctx.kube.connection
        return kopf.ConnectionInfo(
            server=c.server,
            token=c.token,
            ca_path=c.ca_path,
            ca_data=c.ca_data,
            certificate_path=c.certificate_path,
            certificate_data=c.certificate_data,
            private_key_path=c.private_key_path,
            private_key_data=c.private_key_data,
            insecure=c.insecure,
            scheme="Bearer" if c.token else None,
        )

    return registry


# Kopf's peering documentation: "If two operators run with the same priority all operators
# issue a warning and freeze, so that the cluster becomes not served anymore." Replicas of
# one Deployment share their settings, so a fixed default would freeze every pair; a random
# priority from a range this wide makes a tie (about 1 in 10^9 per pair) negligible. The
# highest one acts, the others stand by until its peering record is gone (removed when it
# stops, or expired after Kopf's peering lifetime when it dies).
PRIORITY_RANGE = (1, 2**30)


def peering_priority(settings: OperatorSettings, rng: random.Random | None = None) -> int:
    """This replica's peering priority: the configured one, else a random one."""
    if settings.priority is not None:
        return settings.priority
    return (rng or random.SystemRandom()).randint(*PRIORITY_RANGE)


def kopf_settings(settings: OperatorSettings, priority: int = 0) -> kopf.OperatorSettings:
    ks = kopf.OperatorSettings()
    # Kopf's bookkeeping goes to annotations: our status schema is structural and would
    # prune anything Kopf wrote there.
    ks.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=PREFIX)
    ks.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=PREFIX, key="last-handled-configuration"
    )
    ks.persistence.finalizer = f"{PREFIX}/finalizer"
    ks.posting.reporting_component = "recops-operator"
    # Kopf's own "handler succeeded" notes stay in the log; events carry our transitions.
    ks.posting.level = logging.WARNING
    ks.peering.name = settings.peering_name
    ks.peering.priority = priority
    ks.peering.mandatory = not settings.standalone
    ks.peering.standalone = settings.standalone
    ks.networking.request_timeout = 60
    ks.watching.server_timeout = 300
    return ks


def connection_from_cluster() -> KubeConnection:
    """In a pod, the service account; elsewhere, the current kubeconfig context."""
    try:
        info = kopf.login_with_service_account(
            settings=kopf.OperatorSettings()
        ) or kopf.login_with_kubeconfig(settings=kopf.OperatorSettings())
    except (OSError, ValueError, KeyError) as exc:
        raise RuntimeError(f"cannot read Kubernetes credentials: {exc!r}") from exc
    if info is None:
        raise RuntimeError(
            "no Kubernetes credentials: not in a pod and no kubeconfig found "
            "(set KUBECONFIG, or pass --server for a local API emulator)"
        )

    def _b(v: str | bytes | None) -> bytes | None:
        return v.encode() if isinstance(v, str) else v

    def _s(v: object) -> str | None:
        return str(v) if v else None

    return KubeConnection(
        server=info.server,
        token=info.token,
        ca_path=_s(info.ca_path),
        ca_data=_b(info.ca_data),
        certificate_path=_s(info.certificate_path),
        certificate_data=_b(info.certificate_data),
        private_key_path=_s(info.private_key_path),
        private_key_data=_b(info.private_key_data),
        insecure=bool(info.insecure),
    )


def configure_logging(settings: OperatorSettings) -> None:
    fmt = {"json": kopf.LogFormat.JSON, "plain": kopf.LogFormat.PLAIN, "full": kopf.LogFormat.FULL}[
        settings.log_format
    ]
    kopf.configure(debug=settings.debug, log_format=fmt)
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)


async def run_operator(
    settings: OperatorSettings,
    connection: KubeConnection,
    modules: Sequence[str] = HANDLER_MODULES,
    stop_flag: Any = None,
    ready_flag: Any = None,
    kube: KubeClient | None = None,
) -> None:
    """Run until ``stop_flag`` is set (or forever); ``kube`` lets a caller see its calls.

    The clients are built here, once, and live as long as the operator.
    """
    priority = peering_priority(settings)
    logging.getLogger(__name__).info("peering priority %d", priority)
    async with build_context(settings, kube or KubeClient(connection)) as ctx:
        await kopf.operator(
            registry=build_registry(ctx, modules),
            settings=kopf_settings(settings, priority),
            standalone=settings.standalone,
            priority=priority,
            peering_name=None if settings.standalone else settings.peering_name,
            liveness_endpoint=settings.liveness_endpoint or None,
            clusterwide=not settings.namespaces,
            namespaces=settings.namespaces,
            stop_flag=stop_flag,
            ready_flag=ready_flag,
            memo=kopf.Memo(),
        )
