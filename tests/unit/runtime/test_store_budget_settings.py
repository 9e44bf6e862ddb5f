"""Store budgets default to a share of the pod's memory limit, and engines to a root."""

from __future__ import annotations

from pathlib import Path

import pytest

from recops_runtime import serve_settings as settings
from recops_runtime.fleet.supervisor import worker_settings
from recops_runtime.serve_settings import (
    DEFAULT_STORE_BYTES,
    ServeSettings,
    cgroup_memory_limit,
    default_store_bytes,
)

GIB = 1024**3


def test_cgroup_v2_memory_limit(tmp_path: Path) -> None:
    (tmp_path / "memory.max").write_text(f"{GIB}\n")
    assert cgroup_memory_limit(tmp_path) == GIB
    assert default_store_bytes(tmp_path) == GIB // 16  # 64 MiB of a 1 GiB pod
    (tmp_path / "memory.max").write_text("max\n")
    assert cgroup_memory_limit(tmp_path) is None
    assert default_store_bytes(tmp_path) == DEFAULT_STORE_BYTES


def test_cgroup_v1_memory_limit(tmp_path: Path) -> None:
    (tmp_path / "memory").mkdir()
    (tmp_path / "memory" / "memory.limit_in_bytes").write_text(f"{4 * GIB}\n")
    assert default_store_bytes(tmp_path) == 4 * GIB // 16
    # v1 writes "no limit" as a huge page-rounded number.
    (tmp_path / "memory" / "memory.limit_in_bytes").write_text("9223372036854771712\n")
    assert cgroup_memory_limit(tmp_path) is None


def test_no_or_unreadable_cgroup_means_the_fixed_default(tmp_path: Path) -> None:
    assert default_store_bytes(tmp_path / "missing") == DEFAULT_STORE_BYTES
    (tmp_path / "memory.max").write_text("garbage\n")
    assert default_store_bytes(tmp_path) == DEFAULT_STORE_BYTES


def test_a_tiny_limit_still_leaves_each_store_a_mebibyte(tmp_path: Path) -> None:
    (tmp_path / "memory.max").write_text(f"{4 * 1024 * 1024}\n")
    assert default_store_bytes(tmp_path) == settings.MIN_STORE_BYTES


def test_set_budgets_win_and_workers_share_theirs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(settings, "default_store_bytes", lambda: 160 * 1024 * 1024)
    s = ServeSettings(engines={"v1": Path("/srv/engines/v1/cpu")}, history_max_bytes=8 << 20)
    budgets = s.store_budgets()
    assert (budgets.served, budgets.history, budgets.topk_cache) == (160 << 20, 8 << 20, 160 << 20)
    each = worker_settings(s, 4).store_budgets()
    assert (each.served, each.topk_cache) == (40 << 20, 40 << 20)  # the workers' own stores


def test_engines_root_defaults_to_two_levels_above_each_engine(tmp_path: Path) -> None:
    s = ServeSettings(engines={"v1": tmp_path / "a" / "v1" / "cpu", "v2": tmp_path / "b" / "v2"})
    assert s.engines_roots() == ((tmp_path / "a").resolve(), tmp_path.resolve())
    assert ServeSettings(engines={"v1": Path("/v1")}).engines_roots() == (Path("/v1"),)
    assert ServeSettings(engines={"v1": Path("/e/v1")}).engines_roots() == (Path("/e"),)
    explicit = ServeSettings(engines={"v1": tmp_path / "x"}, engines_root=tmp_path / "root")
    assert explicit.engines_roots() == ((tmp_path / "root").resolve(),)
