"""Make rendered objects exist as rendered, and write status only when it changed."""

from __future__ import annotations

from typing import Any, Literal

from recops_operator.clients.kubernetes import ConflictError, KubeClient, Obj
from recops_operator.resources import Resource, resource_of

Outcome = Literal["created", "updated", "unchanged"]
_SKIP = {"apiVersion", "kind", "metadata", "status"}


def is_subset(desired: Any, observed: Any) -> bool:
    """Whether ``observed`` holds everything in ``desired`` (the server may add defaults)."""
    if isinstance(desired, dict):
        return isinstance(observed, dict) and all(
            is_subset(v, observed.get(k)) for k, v in desired.items()
        )
    if isinstance(desired, list):
        return (
            isinstance(observed, list)
            and len(desired) == len(observed)
            and all(is_subset(d, o) for d, o in zip(desired, observed, strict=True))
        )
    return bool(desired == observed)


def drift(desired: Obj, observed: Obj) -> Obj:
    """A merge patch of the fields of ``desired`` that ``observed`` lacks or differs in."""
    patch: Obj = {
        k: v for k, v in desired.items() if k not in _SKIP and not is_subset(v, observed.get(k))
    }
    labels = desired["metadata"].get("labels") or {}
    if not is_subset(labels, (observed.get("metadata") or {}).get("labels") or {}):
        patch["metadata"] = {"labels": labels}
    return patch


async def ensure(kube: KubeClient, desired: Obj, update: bool = True) -> tuple[Obj, Outcome]:
    """Create ``desired`` when absent; patch the fields that drifted when ``update``.

    Jobs and RayJobs are created only (their pod templates are immutable).
    """
    res = resource_of(desired)
    meta = desired["metadata"]
    observed = await kube.get(res, meta.get("namespace"), meta["name"])
    if observed is None:
        try:
            return await kube.create(desired), "created"
        except ConflictError:  # created meanwhile (another replica or a retry): compare below
            observed = await kube.get(res, meta.get("namespace"), meta["name"])
            if observed is None:
                raise
    if not update:
        return observed, "unchanged"
    patch = drift(desired, observed)
    if not patch:
        return observed, "unchanged"
    return await kube.patch(res, meta.get("namespace"), meta["name"], patch), "updated"


def status_patch(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """A merge patch turning status ``old`` into ``new`` (removed keys become null)."""
    patch: dict[str, Any] = {k: v for k, v in new.items() if old.get(k) != v}
    patch.update({k: None for k in old if k not in new})
    return patch


async def write_status(
    kube: KubeClient,
    res: Resource,
    namespace: str,
    name: str,
    old: dict[str, Any],
    new: dict[str, Any],
) -> bool:
    """Patch the status subresource when something changed; True when written."""
    patch = status_patch(old, new)
    if not patch:
        return False
    await kube.patch(res, namespace, name, {"status": patch}, subresource="status")
    return True
