"""Tenant guardrails: what a RecModel or TrainingRun may ask of the operator.

Whoever may create a RecModel chooses the training image (run with the namespace's MLflow
Secret), the dataset URL the training pod fetches and the tracking server the operator
calls. The operator settings below bound each; a spec outside them is refused with
InvalidSpecError naming the field and the setting (docs/security.md).
"""

from __future__ import annotations

from urllib.parse import urlsplit

from recops_contracts.training import DatasetSource, MlflowSettings, TrainingResources
from recops_operator.settings import OperatorSettings, env_name, server_origin
from recops_operator.validation import InvalidSpecError

IMAGE_FIELD = "spec.training.image (or the TrainingRun's spec.resources.image)"


def _setting(field: str) -> str:
    return env_name((field,))


def check_image(resources: TrainingResources, settings: OperatorSettings) -> None:
    """The training image starts with an allowed prefix (the operator's own image passes)."""
    image = resources.image
    prefixes = settings.allowed_image_prefixes
    if not image or not prefixes or image == settings.image:
        return
    if not any(image.startswith(p) for p in prefixes):
        raise InvalidSpecError(
            f"{IMAGE_FIELD}: image {image!r} does not start with an allowed prefix "
            f"({', '.join(prefixes)}); the operator setting "
            f"{_setting('allowed_image_prefixes')} lists them"
        )


def host_allowed(host: str, allowed: list[str]) -> bool:
    """``host`` matches an entry: equal, '*', or a '.suffix' entry it ends with."""
    host = host.lower()
    for entry in (a.lower() for a in allowed):
        if entry in ("*", host) or (entry.startswith(".") and host.endswith(entry)):
            return True
    return False


def check_dataset_uri(dataset: DatasetSource, settings: OperatorSettings) -> None:
    """dataset.uri uses an allowed scheme and, for http(s), an allowed host."""
    uri = dataset.uri
    if not uri or "://" not in uri:
        return  # a path in the pod's own volumes
    parts = urlsplit(uri)
    scheme = parts.scheme.lower()
    if scheme not in {s.lower() for s in settings.allowed_dataset_schemes}:
        raise InvalidSpecError(
            f"spec.dataset.uri: scheme {scheme!r} is not allowed (allowed: "
            f"{', '.join(settings.allowed_dataset_schemes) or 'none'}); the operator setting "
            f"{_setting('allowed_dataset_schemes')} lists them"
        )
    if scheme in ("http", "https") and not host_allowed(
        parts.hostname or "", settings.allowed_dataset_hosts
    ):
        raise InvalidSpecError(
            f"spec.dataset.uri: host {parts.hostname!r} is not allowed (allowed: "
            f"{', '.join(settings.allowed_dataset_hosts) or 'none'}); the operator setting "
            f"{_setting('allowed_dataset_hosts')} lists them"
        )


def check_tracking_uri(mlflow: MlflowSettings, settings: OperatorSettings) -> None:
    """A tracking server the RecModel names is the operator's own or an allowed one."""
    uri = mlflow.tracking_uri
    allowed = settings.mlflow_allowed_tracking_uris
    if not uri or not allowed:
        return
    servers = {server_origin(a) for a in [*allowed, settings.mlflow_tracking_uri]}
    if server_origin(uri) not in servers:
        raise InvalidSpecError(
            f"spec.mlflow.trackingUri: {uri!r} is not an allowed tracking server; the "
            f"operator setting {_setting('mlflow_allowed_tracking_uris')} lists them"
        )


def check_tenant_spec(
    dataset: DatasetSource,
    resources: TrainingResources,
    mlflow: MlflowSettings,
    settings: OperatorSettings,
) -> None:
    """Every guardrail over one training run's merged spec."""
    check_image(resources, settings)
    check_dataset_uri(dataset, settings)
    check_tracking_uri(mlflow, settings)
