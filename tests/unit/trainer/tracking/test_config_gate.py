"""The training config contract (with the operator's rendering) and the offline gate."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from recops_contracts.training import OfflineGate
from recops_trainer.config import ConfigError, load_config, parse_config
from recops_trainer.runs.search_space import trial_hyperparameters
from recops_trainer.tracking.registry import decide, gate_metric_key


def test_operator_rendered_config_parses() -> None:
    from recops_contracts.training import (
        DatasetSource,
        MlflowSettings,
        ModelHyperparameters,
        OfflineGate as OperatorGate,
        TrainingResources,
        TuneSpec,
    )
    from recops_operator.api.trainingrun import TrainingMode
    from recops_operator.render.training_job import TrainingJobInputs, train_config

    inputs = TrainingJobInputs(
        namespace="ml",
        run_name="movies-1",
        recmodel="movies",
        mode=TrainingMode.TUNE,
        dataset=DatasetSource.model_validate({"format": "movielens-1m", "minInteractions": 5}),
        model=ModelHyperparameters.model_validate({"maxlen": 100, "sseUserProb": 0.5}),
        resources=TrainingResources.model_validate({"workers": 2, "checkpointEvery": 3}),
        gate=OperatorGate.model_validate({"minimum": 0.3, "marginOverChampion": 0.01}),
        mlflow=MlflowSettings.model_validate({"registeredModelName": "movies"}),
        tune=TuneSpec.model_validate(
            {
                "numSamples": 4,
                "searchSpace": {
                    "learningRate": {"distribution": "loguniform", "low": 1e-4, "high": 1e-2}
                },
            }
        ),
    )
    config = parse_config(json.loads(json.dumps(train_config(inputs))))
    assert config.model.maxlen == 100
    assert config.model.sse_user_prob == 0.5
    assert config.resources.workers == 2
    assert config.gate.margin_over_champion == 0.01
    assert config.training_run == "ml/movies-1"
    assert config.tune is not None and config.tune.num_samples == 4


def test_yaml_config_and_clear_errors(tmp_path: Path) -> None:
    path = tmp_path / "train.yaml"
    path.write_text("dataset: {format: synthetic}\nmodel: {dropout: 0.3, itemDim: 32}\n")
    config = load_config(path)
    assert config.model.dropout == 0.3 and config.model.item_dim == 32
    path.write_text("dataset: {format: synthetic}\nmodel: {dropout: 1.5}\n")
    with pytest.raises(ConfigError, match=r"model\.dropout"):
        load_config(path)
    path.write_text("dataset: {format: synthetic}\nmodel: {learningrate: 0.1}\n")
    with pytest.raises(ConfigError, match=r"model\.learningrate"):
        load_config(path)


def test_search_space_names_must_be_hyperparameters() -> None:
    with pytest.raises(ConfigError, match="unknown hyperparameters lr"):
        parse_config(
            {
                "dataset": {"format": "synthetic"},
                "tune": {"searchSpace": {"lr": {"distribution": "uniform", "low": 0, "high": 1}}},
            }
        )


def test_trial_values_become_typed_hyperparameters() -> None:
    base = parse_config({"dataset": {"format": "synthetic"}}).model
    hp = trial_hyperparameters(base, {"numBlocks": 3.0, "dropout": 0.25, "learningRate": 0.01})
    assert hp.num_blocks == 3 and isinstance(hp.num_blocks, int)
    assert hp.dropout == 0.25 and hp.learning_rate == 0.01


GATE = OfflineGate.model_validate({"metric": "ndcg@10", "minimum": 0.2, "marginOverChampion": 0.01})


def test_gate_decisions() -> None:
    assert gate_metric_key(GATE) == "test_sampled_ndcg_at_10"
    assert decide(GATE, 0.5, None).verdict == "candidate"
    assert decide(GATE, 0.5, 0.49).verdict == "candidate"
    worse = decide(GATE, 0.5, 0.495)
    assert worse.verdict == "rejected" and "champion 0.4950" in worse.reason
    low = decide(GATE, 0.1, None)
    assert low.verdict == "rejected" and "below the minimum" in low.reason
    # Measured on another snapshot (a retraining on new feedback): only the minimum holds.
    other = decide(GATE, 0.3, 0.6, data="sha256:new", champion_data="sha256:old")
    assert other.verdict == "candidate" and "another snapshot" in other.reason
    assert decide(GATE, 0.1, 0.6, data="sha256:new", champion_data="sha256:old").verdict == (
        "rejected"
    )
    assert decide(GATE, 0.3, 0.6, data="sha256:old", champion_data="sha256:old").verdict == (
        "rejected"
    )


def test_the_shipped_training_configs_parse() -> None:
    from pathlib import Path

    from recops_trainer.config import load_config

    folder = Path(__file__).resolve().parents[4] / "examples" / "training"
    configs = sorted(folder.glob("*.yaml"))
    assert len(configs) >= 3
    for path in configs:
        config = load_config(path)
        assert config.dataset.uri and config.dataset.sha256, path.name
    full = load_config(folder / "ml1m-softmax-full.yaml")
    assert full.training.monitor == "full" and full.model.item_dim == 128
