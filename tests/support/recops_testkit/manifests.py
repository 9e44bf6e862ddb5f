"""recops.io objects as a client sends them to the API server, for tests and benchmarks."""

from __future__ import annotations

from typing import Any

API_VERSION = "recops.io/v1alpha1"


def custom_object(
    kind: str,
    name: str,
    namespace: str,
    spec: dict[str, Any],
    status: dict[str, Any] | None = None,
) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "apiVersion": API_VERSION,
        "kind": kind,
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec,
    }
    if status:
        obj["status"] = status
    return obj
