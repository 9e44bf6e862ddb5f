"""Serving defaults: engine workers and threads sized by the CPUs the process may use."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from recops_runtime import serve_settings as settings
from recops_runtime.serve_settings import BatchingSettings, cgroup_cpu_quota, usable_cpus


def test_cgroup_v2_quota_caps_the_cpus(tmp_path: Path) -> None:
    (tmp_path / "cpu.max").write_text("150000 100000\n")
    assert cgroup_cpu_quota(tmp_path) == 1.5
    assert usable_cpus(tmp_path) == min(2, len(os.sched_getaffinity(0)))


def test_cgroup_v2_without_a_limit(tmp_path: Path) -> None:
    (tmp_path / "cpu.max").write_text("max 100000\n")
    assert cgroup_cpu_quota(tmp_path) is None


def test_cgroup_v1_quota(tmp_path: Path) -> None:
    (tmp_path / "cpu").mkdir()
    (tmp_path / "cpu" / "cpu.cfs_quota_us").write_text("400000\n")
    (tmp_path / "cpu" / "cpu.cfs_period_us").write_text("100000\n")
    assert cgroup_cpu_quota(tmp_path) == 4.0
    (tmp_path / "cpu" / "cpu.cfs_quota_us").write_text("-1\n")
    assert cgroup_cpu_quota(tmp_path) is None


def test_unreadable_cgroup_files_mean_no_limit(tmp_path: Path) -> None:
    (tmp_path / "cpu.max").write_text("garbage\n")
    assert cgroup_cpu_quota(tmp_path) is None
    assert cgroup_cpu_quota(tmp_path / "missing") is None


@pytest.mark.parametrize(("cpus", "workers", "threads"), [(1, 1, 1), (2, 2, 1), (16, 8, 2)])
def test_cpu_targets_get_a_worker_per_cpu(
    monkeypatch: pytest.MonkeyPatch, cpus: int, workers: int, threads: int
) -> None:
    monkeypatch.setattr(settings, "usable_cpus", lambda: cpus)
    batching = BatchingSettings()
    assert batching.resolved_engine_workers() == workers
    assert batching.resolved_engine_threads(workers) == threads


def test_gpu_targets_get_one_worker_and_explicit_values_win(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(settings, "usable_cpus", lambda: 16)
    assert BatchingSettings().resolved_engine_workers(gpu=True) == 1
    explicit = BatchingSettings(engine_workers=3, engine_threads=2)
    assert explicit.resolved_engine_workers(gpu=True) == 3
    assert explicit.resolved_engine_threads(3) == 2


@pytest.mark.parametrize(
    ("cpus", "processes", "workers", "threads"), [(1, 1, 1, 1), (2, 2, 1, 1), (16, 8, 2, 1)]
)
def test_each_process_of_a_server_sizes_its_engines_by_its_share_of_the_cpus(
    monkeypatch: pytest.MonkeyPatch, cpus: int, processes: int, workers: int, threads: int
) -> None:
    from recops_runtime.fleet import supervisor
    from recops_runtime.serve_settings import ServeSettings

    monkeypatch.setattr(settings, "usable_cpus", lambda: cpus)
    monkeypatch.setattr(supervisor, "usable_cpus", lambda: cpus)
    serve = ServeSettings(engines={"v1": Path("engines/v1")})
    assert serve.resolved_processes() == processes  # one per CPU, at most 8
    each = supervisor.worker_settings(serve, processes).batching
    assert each.resolved_engine_workers() == workers
    assert each.resolved_engine_threads(workers) == threads
