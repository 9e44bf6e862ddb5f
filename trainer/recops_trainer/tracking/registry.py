"""Registering a trained model and the offline gate.

Every successful run registers a version tagged with its metrics, protocol and data hash.
A version that beats the ``champion`` by the configured margin on the configured metric
(and reaches the minimum) gets the ``candidate`` alias (the champion's score counts only
when it was measured on the same data set snapshot, see ``decide``); one that does not is
kept, tagged ``recops.gate=rejected`` with the reason. Nothing here moves ``champion``: promotion
belongs to the rollout.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from recops_contracts.tracking import (
    ALIAS_CANDIDATE,
    ALIAS_CHAMPION,
    TAG_DATASET_HASH,
    TAG_GATE,
    TAG_GATE_REASON,
    TAG_MODEL_VERSION,
    TAG_PROTOCOL,
    TAG_REGISTERED_MODEL,
    VERDICT_CANDIDATE,
    VERDICT_REJECTED,
    Verdict,
    metric_key,
)
from recops_contracts.training import OfflineGate


@dataclass(frozen=True)
class GateDecision:
    verdict: Verdict
    reason: str
    metric: str
    value: float
    champion_value: float | None


def gate_metric_key(gate: OfflineGate) -> str:
    """The MLflow metric the gate reads, e.g. ``test_sampled_ndcg_at_10``."""
    return metric_key("test", gate.protocol, gate.metric.value)


def decide(
    gate: OfflineGate,
    value: float,
    champion_value: float | None,
    *,
    data: str | None = None,
    champion_data: str | None = None,
) -> GateDecision:
    """The gate as a pure function of the new value and the champion's.

    The champion's value counts only when it was measured on the same snapshot (``data``
    against ``champion_data``, when both are known): a retraining on new feedback has a new
    test split (each user's newest item), on which an old score says nothing. Then the
    minimum applies, and the rollout's canary compares the two on the same live traffic.
    """
    key = gate_metric_key(gate)
    if value < gate.minimum:
        return GateDecision(
            VERDICT_REJECTED,
            f"{key} {value:.4f} is below the minimum {gate.minimum:.4f}",
            key,
            value,
            champion_value,
        )
    if champion_value is None:
        return GateDecision(
            VERDICT_CANDIDATE, f"{key} {value:.4f}; no champion yet", key, value, champion_value
        )
    if data and champion_data and data != champion_data:
        return GateDecision(
            VERDICT_CANDIDATE,
            f"{key} {value:.4f} >= minimum {gate.minimum:.4f}; the champion's "
            f"{champion_value:.4f} was measured on another snapshot ({champion_data[:12]}), "
            "so the canary compares them on live traffic",
            key,
            value,
            champion_value,
        )
    needed = champion_value + gate.margin_over_champion
    if value >= needed:
        return GateDecision(
            VERDICT_CANDIDATE,
            f"{key} {value:.4f} >= champion {champion_value:.4f} + margin "
            f"{gate.margin_over_champion:.4f}",
            key,
            value,
            champion_value,
        )
    return GateDecision(
        VERDICT_REJECTED,
        f"{key} {value:.4f} < champion {champion_value:.4f} + margin "
        f"{gate.margin_over_champion:.4f}",
        key,
        value,
        champion_value,
    )


def _champion(client: Any, name: str, key: str) -> tuple[float | None, str | None]:
    """The champion's value of ``key`` and the hash of the data it was measured on."""
    from mlflow.exceptions import MlflowException

    try:
        champion = client.get_model_version_by_alias(name, ALIAS_CHAMPION)
    except MlflowException:
        return None, None
    data = champion.tags.get(TAG_DATASET_HASH)
    if key in champion.tags:
        return float(champion.tags[key]), data
    if champion.run_id:
        metrics = client.get_run(champion.run_id).data.metrics
        if key in metrics:
            return float(metrics[key]), data
    return None, data


def logged_model_id(model_uri: str) -> str | None:
    """The logged model's id in a `models:/m-...` URI (MLflow 3's form for a model logged in a
    run), or None for other sources (a run's artifact path, an older registry URI)."""
    prefix = "models:/"
    if model_uri.startswith(prefix):
        rest = model_uri.removeprefix(prefix)
        if rest.startswith("m-") and "/" not in rest:
            return rest
    return None


def register_and_gate(
    client: Any,
    *,
    name: str,
    model_uri: str,
    run_id: str,
    metrics: dict[str, float],
    gate: OfflineGate,
    dataset_hash: str,
) -> tuple[str, GateDecision]:
    """Register ``model_uri`` as a new version of ``name``, gate it; returns (version, decision)."""
    from mlflow.exceptions import MlflowException

    try:
        client.get_registered_model(name)
    except MlflowException:
        client.create_registered_model(name)
    # A tracking server (unlike a local store) refuses a `models:/m-...` source unless the
    # logged model it names is passed as well.
    version = client.create_model_version(
        name, source=model_uri, run_id=run_id, model_id=logged_model_id(model_uri)
    )
    number = str(version.version)
    tags = {k: f"{v:.6f}" for k, v in metrics.items()}
    tags |= {TAG_PROTOCOL: gate.protocol.value, TAG_DATASET_HASH: dataset_hash}
    for key, value in tags.items():
        client.set_model_version_tag(name, number, key, value)
    key = gate_metric_key(gate)
    if key not in metrics:
        raise ValueError(f"gate metric {key} was not measured; measured: {sorted(metrics)}")
    champion_value, champion_data = _champion(client, name, key)
    decision = decide(
        gate, metrics[key], champion_value, data=dataset_hash, champion_data=champion_data
    )
    client.set_model_version_tag(name, number, TAG_GATE, decision.verdict)
    client.set_model_version_tag(name, number, TAG_GATE_REASON, decision.reason)
    if decision.verdict == VERDICT_CANDIDATE:
        client.set_registered_model_alias(name, ALIAS_CANDIDATE, number)
    run_tags = {
        TAG_REGISTERED_MODEL: name,
        TAG_MODEL_VERSION: number,
        TAG_GATE: decision.verdict,
        TAG_GATE_REASON: decision.reason,
        TAG_PROTOCOL: gate.protocol.value,
        TAG_DATASET_HASH: dataset_hash,
    }
    for tag, value in run_tags.items():
        client.set_tag(run_id, tag, value)
    return number, decision
