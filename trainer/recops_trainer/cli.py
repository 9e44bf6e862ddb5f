"""`recops data prepare`, `recops train`, `recops tune`, `recops evaluate`.

Only light imports here: the operator image has no torch, and `recops --help` must work.
"""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import typer

data_app = typer.Typer(help="Prepare dataset snapshots.", no_args_is_help=True)


def _fail(message: str) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(2)


def _setup_logging() -> None:
    import logging

    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(name)s %(message)s", stream=sys.stderr
    )


@data_app.command("prepare")
def prepare(
    out: Annotated[Path, typer.Option(help="Folder to write the snapshot to.")],
    dataset_format: Annotated[
        str | None,
        typer.Option(
            "--format",
            help="movielens-100k, movielens-1m, movielens-10m, movielens-20m, movielens-25m, "
            "movielens-32m, movielens-latest, movielens-1b, sasrec or synthetic. "
            "movielens-20m, -25m and -1b are prepared streamed into per-user Parquet rows "
            "(on Ray Data when RAY_ADDRESS is set), the layout training streams from.",
        ),
    ] = None,
    uri: Annotated[
        str | None, typer.Option(help="Local file, folder or archive; empty downloads.")
    ] = None,
    sha256: Annotated[str | None, typer.Option(help="Expected sha256 of the file.")] = None,
    min_interactions: Annotated[int, typer.Option(help="k-core filter.")] = 5,
    config: Annotated[
        Path | None, typer.Option(help="Training config; its dataset section is used.")
    ] = None,
) -> None:
    """Read, filter and remap interactions; write parquet files and a manifest with a hash."""
    from recops_contracts.training import SCALE_FORMATS, DatasetSource
    from recops_trainer.config import ConfigError, load_config
    from recops_trainer.data.datasets import DataUnavailableError
    from recops_trainer.data.snapshot import write_snapshot
    from recops_trainer.data.sources import load_source

    try:
        if config is not None:
            source = load_config(config).dataset
        elif dataset_format is not None:
            source = DatasetSource.model_validate(
                {
                    "format": dataset_format,
                    "uri": uri,
                    "sha256": sha256,
                    "minInteractions": min_interactions,
                }
            )
        else:
            raise _fail("give --format (and --uri) or --config")
        if source.format in SCALE_FORMATS:
            from recops_trainer.data.prepared.writer import prepare as prepare_scale
            from recops_trainer.runs.scale_data import resolve_scale_source

            _setup_logging()
            manifest = prepare_scale(source, resolve_scale_source(source), out)
            typer.echo(json.dumps(manifest, indent=2))
            return
        snapshot = load_source(source)
    except (ConfigError, DataUnavailableError, ValueError) as exc:
        raise _fail(str(exc)) from exc
    write_snapshot(snapshot, out)
    typer.echo(json.dumps(snapshot.manifest, indent=2))


@data_app.command("ingest")
def ingest(
    snapshot: Annotated[Path, typer.Option(help="The parent snapshot folder.")],
    feedback_log: Annotated[
        Path, typer.Option(help="Folder of `recops serve --feedback-log` folders.")
    ],
    out: Annotated[Path, typer.Option(help="Folder to write the new snapshot to.")],
    attribution_window: Annotated[
        float,
        typer.Option(help="Seconds after a recommendation in which a click on it counts."),
    ] = 3600.0,
    include_unattributed: Annotated[
        bool,
        typer.Option(
            help="Also train on feedback the service marked unattributed (its request was "
            "not served to that user within the window)."
        ),
    ] = False,
) -> None:
    """Parent snapshot + the feedback logs' new interactions = a new snapshot with lineage."""
    from recops_trainer.data.ingest import ingest as run_ingest

    _setup_logging()
    try:
        new, report = run_ingest(
            snapshot,
            feedback_log,
            out,
            attribution_window_s=attribution_window,
            include_unattributed=include_unattributed,
        )
    except (FileNotFoundError, ValueError) as exc:
        raise _fail(str(exc)) from exc
    for example in report.invalid_examples:
        typer.echo(f"skipped: {example}", err=True)
    typer.echo(json.dumps(new.manifest, indent=2))


@contextlib.contextmanager
def _stdout_to_stderr() -> Iterator[None]:
    """Standard output carries only the command's JSON result, which callers parse; what
    libraries print meanwhile (MLflow's "View run ... at" links when it tracks to a server,
    Ray's banners) goes to standard error."""
    with contextlib.redirect_stdout(sys.stderr):
        yield


def train(
    config: Annotated[Path, typer.Option(help="Training config (JSON or YAML, camelCase).")],
    run_name: Annotated[str | None, typer.Option(help="MLflow run name.")] = None,
    resume: Annotated[
        str | None,
        typer.Option(help="Continue a stopped run: its output folder or its MLflow run id."),
    ] = None,
    output: Annotated[
        Path | None, typer.Option(help="Output folder (overrides the config's output).")
    ] = None,
    backend: Annotated[
        str,
        typer.Option(
            help="auto (Ray Train when RAY_ADDRESS is set or resources.workers > 1), "
            "local (this process) or ray."
        ),
    ] = "auto",
    track: Annotated[
        bool,
        typer.Option(
            help="Track the run and register the model in MLflow; --no-track only writes "
            "the output folder (a machine without a tracking server or the mlflow package)."
        ),
    ] = True,
) -> None:
    """Train SSE-PT (or SASRec): snapshot, fit with early stopping, test, track, register."""
    from recops_trainer.config import ConfigError, load_config
    from recops_trainer.data.datasets import DataUnavailableError
    from recops_trainer.runs.train import run_train

    _setup_logging()
    try:
        cfg = load_config(config)
        with _stdout_to_stderr():
            summary = run_train(
                cfg, run_name=run_name, resume=resume, output=output, backend=backend, track=track
            )
    except (ConfigError, DataUnavailableError) as exc:
        raise _fail(str(exc)) from exc
    typer.echo(json.dumps(summary, indent=2))


def tune(
    config: Annotated[Path, typer.Option(help="Training config with a `tune` section.")],
    output: Annotated[Path | None, typer.Option(help="Output folder.")] = None,
) -> None:
    """Search hyperparameters with Ray Tune and ASHA; the best trial's model is the result."""
    from recops_trainer.config import ConfigError, load_config
    from recops_trainer.data.datasets import DataUnavailableError
    from recops_trainer.runs.tune import run_tune

    _setup_logging()
    try:
        cfg = load_config(config)
        if cfg.tune is None:
            raise ConfigError("tune: recops tune needs a `tune` section with a searchSpace")
        with _stdout_to_stderr():
            summary = run_tune(cfg, output=output)
    except (ConfigError, DataUnavailableError) as exc:
        raise _fail(str(exc)) from exc
    typer.echo(json.dumps(summary, indent=2))


def evaluate(
    model: Annotated[Path, typer.Option(help="Model folder written by training.")],
    config: Annotated[
        Path | None, typer.Option(help="Training config naming the data (or use --snapshot).")
    ] = None,
    snapshot: Annotated[
        Path | None, typer.Option(help="Snapshot folder from `recops data prepare`.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    baselines: Annotated[
        bool, typer.Option(help="Also score most-popular and Markov baselines.")
    ] = False,
    movies: Annotated[
        Path | None, typer.Option(help="movies.dat / u.item for genre diversity.")
    ] = None,
    item_ids: Annotated[
        Path | None,
        typer.Option(help="SASRec item_ids.txt mapping file ids to movie ids (with --movies)."),
    ] = None,
    users: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="Evaluate a seeded subsample of this many users (recorded in the result): "
            "a quick check of large data. --snapshot also takes a prepared folder.",
        ),
    ] = None,
) -> None:
    """Score the test split under both protocols (sampled-100 and full ranking)."""
    from recops_trainer.config import ConfigError, load_config
    from recops_trainer.data.datasets import DataUnavailableError
    from recops_trainer.evaluation.offline import evaluate_model_folder

    try:
        dataset = load_config(config).dataset if config else None
        result: dict[str, Any] = evaluate_model_folder(
            model,
            dataset=dataset,
            snapshot_dir=snapshot,
            baselines=baselines,
            movies=movies,
            item_ids=item_ids,
            users=users,
        )
    except (ConfigError, DataUnavailableError, FileNotFoundError, ValueError) as exc:
        raise _fail(str(exc)) from exc
    if as_json:
        typer.echo(json.dumps(result))
        return
    for name, protocols in result["models"].items():
        for protocol, values in protocols.items():
            typer.echo(
                f"{name:8s} {protocol:8s} ndcg@10 {values['ndcg@10']:.4f} "
                f"hr@10 {values['hr@10']:.4f} mrr {values['mrr']:.4f}"
            )
    typer.echo(f"dataset hash {result['dataset_hash']}")
