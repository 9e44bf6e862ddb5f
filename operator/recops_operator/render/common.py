"""Names, labels and owner references shared by every rendered object."""

from __future__ import annotations

import hashlib
from typing import Any

from recops_operator.api.recmodel import Toleration

LABEL_MANAGED_BY = "app.kubernetes.io/managed-by"
LABEL_NAME = "app.kubernetes.io/name"
LABEL_COMPONENT = "app.kubernetes.io/component"
LABEL_RECMODEL = "recops.io/recmodel"
LABEL_TRAINING_RUN = "recops.io/training-run"
LABEL_VERSION = "recops.io/version"
LABEL_TARGET = "recops.io/target"
MANAGER = "recops-operator"
FEEDBACK_MOUNT = "/feedback"

Obj = dict[str, Any]


def feedback_dir(namespace: str, recmodel: str) -> str:
    """A RecModel's folder on the feedback volume: one subfolder per serving pod below."""
    return f"{FEEDBACK_MOUNT}/{namespace}/{recmodel}"


def object_name(*parts: str, max_length: int = 63) -> str:
    """A DNS-1123 label from ``parts``; too long names keep a hash of the whole for uniqueness."""
    raw = "-".join(p.strip("-").lower().replace(".", "-").replace("_", "-") for p in parts if p)
    if len(raw) <= max_length:
        return raw
    digest = hashlib.sha256(raw.encode()).hexdigest()[:8]
    return f"{raw[: max_length - 9].rstrip('-')}-{digest}"


def labels(recmodel: str, component: str, **extra: str) -> dict[str, str]:
    result = {
        LABEL_MANAGED_BY: MANAGER,
        LABEL_NAME: "recops",
        LABEL_COMPONENT: component,
        LABEL_RECMODEL: recmodel,
    }
    result.update({k: v for k, v in extra.items() if v})
    return result


def owner_reference(owner: Obj, controller: bool = True) -> Obj:
    """An ownerReference to ``owner`` so that deleting it deletes what it created."""
    meta = owner["metadata"]
    return {
        "apiVersion": owner["apiVersion"],
        "kind": owner["kind"],
        "name": meta["name"],
        "uid": meta["uid"],
        "controller": controller,
        "blockOwnerDeletion": True,
    }


def metadata(name: str, namespace: str, lbls: dict[str, str], owner: Obj | None) -> Obj:
    meta: Obj = {"name": name, "namespace": namespace, "labels": lbls}
    if owner is not None and owner.get("metadata", {}).get("uid"):
        meta["ownerReferences"] = [owner_reference(owner)]
    return meta


def tolerations(items: list[Toleration]) -> list[Obj]:
    return [t.to_wire() for t in items]


# The images' user (docker/*.Dockerfile: USER 10001:10001).
RUN_AS = 10001


def restricted_pod_security_context() -> Obj:
    """Pod security context of the "restricted" standard: the images' non-root user, and
    volumes group-owned by it so that it can write them."""
    return {
        "runAsNonRoot": True,
        "runAsUser": RUN_AS,
        "runAsGroup": RUN_AS,
        "fsGroup": RUN_AS,
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def restricted_security_context() -> Obj:
    """Container security context of the Kubernetes "restricted" pod security standard."""
    return {
        "runAsNonRoot": True,
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }
