"""The supervisor says how a process ended: the signal's name, not ``status None``."""

from __future__ import annotations

import multiprocessing
import os
import signal
import time

import pytest

from recops_runtime.fleet.supervisor import describe_exit


@pytest.mark.parametrize(
    ("exitcode", "words"),
    [
        (0, "exited with status 0"),
        (1, "exited with status 1"),
        (-signal.SIGKILL, "killed by SIGKILL"),
        (-signal.SIGSEGV, "killed by SIGSEGV"),
        (-200, "killed by signal 200"),
        (None, "ended (its exit status could not be read)"),
    ],
)
def test_exit_codes_in_words(exitcode: int | None, words: str) -> None:
    assert describe_exit(exitcode) == words


def test_a_killed_process_is_named_by_its_signal() -> None:
    process = multiprocessing.get_context("spawn").Process(target=time.sleep, args=(60,))
    process.start()
    assert process.pid is not None
    os.kill(process.pid, signal.SIGKILL)
    process.join(30)
    assert describe_exit(process.exitcode) == "killed by SIGKILL"
