"""The tuning search space: config dimensions as Ray Tune domains, trials as hyperparameters."""

from __future__ import annotations

from typing import Any

from recops_contracts.tracking import metric_key
from recops_contracts.training import EvaluationProtocol, ModelHyperparameters, SearchDimension


def search_space(spec: dict[str, SearchDimension]) -> dict[str, Any]:
    """Ray Tune domains for the config's ``tune.searchSpace``."""
    from ray import tune

    space: dict[str, Any] = {}
    for name, dim in spec.items():
        if dim.distribution == "choice":
            space[name] = tune.choice(list(dim.values or []))
            continue
        # The config's validator guarantees low < high for the ranged distributions.
        low, high = float(dim.low or 0.0), float(dim.high or 0.0)
        if dim.distribution == "uniform":
            space[name] = tune.uniform(low, high)
        elif dim.distribution == "loguniform":
            space[name] = tune.loguniform(low, high)
        else:
            space[name] = tune.randint(int(low), int(high))
    return space


def trial_hyperparameters(
    base: ModelHyperparameters, params: dict[str, Any]
) -> ModelHyperparameters:
    """``base`` with the trial's values (camelCase names), integers where the field is one."""
    merged = base.model_dump(mode="json", by_alias=True)
    for name, value in params.items():
        current = merged.get(name)
        merged[name] = round(value) if isinstance(current, int) else value
    return ModelHyperparameters.model_validate(merged)


def metric_name(metric: str) -> str:
    """``ndcg@10`` -> ``val_ndcg_at_10`` (sampled validation, as the loop reports it)."""
    return metric_key("val", EvaluationProtocol.SAMPLED, metric)
