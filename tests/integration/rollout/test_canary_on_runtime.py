"""Canaries on one machine: a real `recops serve`, a real Prometheus, `recops loadtest`.

One runtime process serves the stable version and three candidates (Markov recommenders
fitted on real MovieLens-1M sequences, see recops_testkit.markov_engines); Prometheus
scrapes it every second; `recops loadtest` replays held-out sequences with simulated clicks while
`recops rollout` drives the weighted router through the admin API. A worse candidate (an
under-trained model, and separately one that fails requests) is rolled back; a better one
is promoted; no request fails because the weights change.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from recops_cli.quickstart.processes import ServingPorts
from recops_runtime.tools.sequences import read_sequences
from recops_testkit.markov_engines import Vocabulary, build_markov_engine
from recops_testkit.processes import stop, wait_until_ready

pytestmark = [pytest.mark.slow, pytest.mark.needs_data]

RECOPS = str(Path(sys.executable).with_name("recops"))
RATE = 300  # requests per second, bounded by the loadtest's duration
CANDIDATES = {"under-trained": (0.01, None), "failing": (1.0, 1500), "better": (1.0, None)}
POLICY = {
    "analysisInterval": "3s",
    "steps": [
        {"setWeight": 20},
        {"analysis": {"count": 2}},
        {"setWeight": 50},
        {"analysis": {}},
        {"setWeight": 100},
    ],
    "metrics": [
        {
            "name": "error-rate",
            "builtin": "error-rate",
            "successCondition": "<=",
            "threshold": 0.01,
            "minSampleSize": 40,
        },
        {
            "name": "latency-p99",
            "builtin": "latency-p99",
            "successCondition": "<=",
            "threshold": 1.0,
            "minSampleSize": 40,
        },
        {
            "name": "hit-rate",
            "builtin": "hit-rate-vs-stable",
            "successCondition": ">=",
            "threshold": -0.01,
            "minSampleSize": 40,
            "confidence": 0.98,
        },
    ],
}


@dataclass(frozen=True)
class Runtime:
    grpc: str
    admin: str
    metrics: str
    prometheus: str
    dataset: Path
    work: Path


@pytest.fixture(scope="module")
def runtime(
    shared_data: Path,
    tmp_path_factory: pytest.TempPathFactory,
    start_prometheus: Callable[[list[str]], str],
) -> Iterator[Runtime]:
    dataset = shared_data / "ml-1m" / "ml-1m.txt.gz"
    if not dataset.is_file():
        pytest.skip(f"{dataset} is missing")
    work = tmp_path_factory.mktemp("canary")
    sequences = read_sequences(dataset)
    vocab = Vocabulary.of(sequences)
    stable = build_markov_engine(work / "stable", sequences, vocab, fraction=0.3, model_version="1")
    engines = {"stable": stable}
    for i, (name, (fraction, rows)) in enumerate(CANDIDATES.items()):
        engines[name] = build_markov_engine(
            work / name, sequences, vocab, fraction=fraction, model_version=str(i + 2), rows=rows
        )
    del sequences
    ports = ServingPorts()
    args = [
        RECOPS,
        "serve",
        *ports.flags(),
        "--weights",
        ",".join(f"{n}={100 if n == 'stable' else 0}" for n in engines),
        "--engine-threads",
        "1",
        "--log-level",
        "WARNING",
    ]
    for name, folder in engines.items():
        args += ["--engine", f"{name}={folder}"]
    log = (work / "serve.log").open("wb")
    proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)
    admin = f"http://127.0.0.1:{ports.admin}"  # the admin API's own loopback port
    try:
        ready = f"http://127.0.0.1:{ports.http}/readyz"
        wait_until_ready(proc, ready, "recops serve", work / "serve.log")
        prometheus = start_prometheus([f"127.0.0.1:{ports.metrics}"])
        yield Runtime(
            f"127.0.0.1:{ports.grpc}",
            admin,
            f"http://127.0.0.1:{ports.metrics}/metrics",
            prometheus,
            dataset,
            work,
        )
    finally:
        stop(proc, timeout=30)
        log.close()


def server_requests(rt: Runtime) -> dict[tuple[str, str], float]:
    """recops_requests_total by (version, code), as the runtime counts them."""
    from prometheus_client.parser import text_string_to_metric_families

    counts: dict[tuple[str, str], float] = {}
    for family in text_string_to_metric_families(httpx.get(rt.metrics).text):
        for s in family.samples:
            if s.name == "recops_requests_total":
                key = (s.labels["version"], s.labels["code"])
                counts[key] = counts.get(key, 0.0) + s.value
    return counts


# What a server sheds when the machine cannot keep up with the fixed request rate (a busy
# CI machine): load, not a fault of the versions or of moving weights between them.
OVERLOAD = frozenset({"RESOURCE_EXHAUSTED", "DEADLINE_EXCEEDED"})


def faults(errors: dict[str, int] | dict[tuple[str, str], float]) -> dict[Any, Any]:
    """Failures other than overload shedding, by code or by (version, code)."""
    return {
        key: n
        for key, n in errors.items()
        if (key if isinstance(key, str) else key[1]) not in OVERLOAD
    }


@dataclass
class Canary:
    exit_code: int
    log: dict[str, Any]
    load: dict[str, Any]
    output: str
    requests_to_candidate: float
    errors: dict[tuple[str, str], float]  # (version, code) -> failed requests in the run
    traffic: dict[str, int]

    @property
    def errors_by_version(self) -> dict[str, float]:
        out: dict[str, float] = {}
        for (version, _), n in self.errors.items():
            out[version] = out.get(version, 0) + n
        return out

    def first(self, action: str, **where: Any) -> dict[str, Any]:
        for r in self.log["records"]:
            if r["action"] == action and all(r["weights"].get(k) == v for k, v in where.items()):
                return r
        raise AssertionError(f"no {action} {where} in {self.log['records']}")


def run_canary(rt: Runtime, candidate: str, load_seconds: float, scrape: bool = False) -> Canary:
    """One canary under load; ``scrape`` measures from the runtime's /metrics, not Prometheus."""
    everything_stable = {"weights": {"stable": 100, **dict.fromkeys(CANDIDATES, 0)}}
    httpx.put(f"{rt.admin}/admin/v1/traffic", json=everything_stable).raise_for_status()
    before = server_requests(rt)
    policy = rt.work / "policy.yaml"
    policy.write_text(yaml.safe_dump(POLICY))
    load_json, log_json = rt.work / f"load-{candidate}.json", rt.work / f"rollout-{candidate}.json"
    load = subprocess.Popen(
        [
            RECOPS,
            "loadtest",
            "--dataset",
            str(rt.dataset),
            "--target",
            rt.grpc,
            "--rate",
            str(RATE),
            "--requests",
            str(int(RATE * load_seconds)),
            "--duration-s",
            str(load_seconds),
            "--json",
            str(load_json),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        # Start the canary once stable traffic flows (the loadtest reads the data first).
        deadline = time.monotonic() + 30
        while server_requests(rt).get(("stable", "OK"), 0) < before.get(("stable", "OK"), 0) + RATE:
            assert time.monotonic() < deadline, "no load reached the runtime"
            time.sleep(0.2)
        rollout = subprocess.run(
            [
                RECOPS,
                "rollout",
                "--stable",
                "stable",
                "--candidate",
                candidate,
                "--admin",
                rt.admin,
                *(["--metrics", rt.metrics] if scrape else ["--prometheus", rt.prometheus]),
                "--policy",
                str(policy),
                "--log",
                str(log_json),
                "--max-duration-s",
                "90",
            ],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        _, load_err = load.communicate(timeout=load_seconds + 60)
    finally:
        if load.poll() is None:
            load.kill()
    assert load.returncode == 0, load_err.decode()
    after = server_requests(rt)
    errors = {
        key: n - before.get(key, 0)
        for key, n in after.items()
        if key[1] != "OK" and n > before.get(key, 0)
    }
    to_candidate = sum(n - before.get(k, 0) for k, n in after.items() if k[0] == candidate)
    traffic = httpx.get(f"{rt.admin}/admin/v1/traffic").json()["weights"]
    return Canary(
        rollout.returncode,
        json.loads(log_json.read_text()),
        json.loads(load_json.read_text()),
        rollout.stdout + rollout.stderr,
        to_candidate,
        errors,
        traffic,
    )


def report_rollback(name: str, canary: Canary) -> int:
    """The analysis measurements taken from the candidate's first traffic to the abort.

    Counted, not timed: how long an interval takes in seconds depends on the machine.
    """
    records = canary.log["records"]
    first = canary.first("setWeights", candidate=20)
    abort = canary.first("abort")
    window = records[records.index(first) : records.index(abort) + 1]
    measured = sum(1 for record in window if record["metrics"])
    seconds = abort["elapsedS"] - first["elapsedS"]
    print(
        f"\n{name}: rolled back after {measured} analysis measurement(s), {seconds:.1f} s "
        f"after the candidate's first traffic; {canary.requests_to_candidate:.0f} requests "
        f"reached it; reason {abort['reason']}: {abort['message']}"
    )
    return measured


def test_under_trained_candidate_is_rolled_back(runtime: Runtime) -> None:
    canary = run_canary(runtime, "under-trained", load_seconds=16)
    assert canary.exit_code == 1, canary.output
    assert canary.log["verdict"]["phase"] == "Aborted"
    assert canary.log["verdict"]["reason"] == "AnalysisFailed"
    assert "hit-rate" in canary.log["verdict"]["message"]
    assert canary.traffic["stable"] == 100 and canary.traffic["under-trained"] == 0
    # The first step measures twice; a candidate this much worse fails within those two.
    assert 1 <= report_rollback("under-trained candidate", canary) <= 2
    # Moving weights failed no request: the loadtest saw nothing but overload shedding.
    assert faults(canary.load["overall"]["errors"]) == {}, canary.load["overall"]


def test_candidate_failing_requests_is_rolled_back(runtime: Runtime) -> None:
    # Measured straight from the runtime's /metrics endpoint, as on a machine without Prometheus.
    canary = run_canary(runtime, "failing", load_seconds=14, scrape=True)
    assert canary.log["provider"].startswith("scrape")
    assert canary.exit_code == 1, canary.output
    assert canary.log["verdict"]["reason"] == "AnalysisFailed"
    assert "error-rate" in canary.log["verdict"]["message"]
    assert canary.traffic["stable"] == 100 and canary.traffic["failing"] == 0
    assert 1 <= report_rollback("failing candidate", canary) <= 2
    # Only the candidate's requests failed; the stable version failed none.
    assert canary.errors_by_version.get("failing", 0) > 0
    assert not [key for key in faults(canary.errors) if key[0] == "stable"], canary.errors


def test_better_candidate_is_promoted_without_failed_requests(runtime: Runtime) -> None:
    canary = run_canary(runtime, "better", load_seconds=30)
    assert canary.exit_code == 0, canary.output
    assert canary.log["verdict"]["phase"] == "Promoted"
    assert canary.log["verdict"]["reason"] == "AllStepsCompleted"
    weights = [
        r["weights"]["candidate"]
        for r in canary.log["records"]
        if r["action"] in ("setWeights", "promote")
    ]
    assert weights == [20, 50, 100, 100]
    assert canary.traffic["better"] == 100 and canary.traffic["stable"] == 0
    assert faults(canary.load["overall"]["errors"]) == {}, canary.load["overall"]
    assert faults(canary.errors) == {}, canary.errors
    served = {v["version"]: v["requests"] for v in canary.load["versions"]}
    assert served.get("better", 0) > 0 and served.get("stable", 0) > 0
