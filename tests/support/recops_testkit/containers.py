"""Containers the image tier starts: detached servers and batch runs, always removed."""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

from recops_testkit.image_builds import builder_env


@dataclass(frozen=True)
class Container:
    builder: str
    name: str

    def logs(self) -> str:
        result = subprocess.run(
            [self.builder, "logs", self.name], capture_output=True, text=True, check=False
        )
        return result.stdout + result.stderr

    def running(self) -> bool:
        result = subprocess.run(
            [self.builder, "inspect", "--format", "{{.State.Running}}", self.name],
            capture_output=True,
            text=True,
            check=False,
        )
        return result.stdout.strip() == "true"


def _quietly(*command: str) -> None:
    """Clean-up that must not hide the test's own failure."""
    subprocess.run(command, env=builder_env(), capture_output=True, check=False)


def _name() -> str:
    return f"recops-image-tier-{uuid.uuid4().hex[:8]}"


@contextmanager
def started(builder: str, run_args: Sequence[str]) -> Iterator[Container]:
    """A detached container; stopped (SIGTERM, as the kubelet does) and removed on exit."""
    box = Container(builder, _name())
    subprocess.run(
        [builder, "run", "--detach", "--name", box.name, *run_args],
        env=builder_env(),
        capture_output=True,
        check=True,
    )
    try:
        yield box
    finally:
        _quietly(builder, "stop", "--time", "10", box.name)
        _quietly(builder, "rm", "--force", box.name)


def run_to_end(
    builder: str, run_args: Sequence[str], timeout: float
) -> subprocess.CompletedProcess[str]:
    """A container run to its end (a Job's pod), output captured; removed afterwards."""
    name = _name()
    try:
        return subprocess.run(
            [builder, "run", "--rm", "--name", name, *run_args],
            env=builder_env(),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    finally:
        _quietly(builder, "rm", "--force", name)
