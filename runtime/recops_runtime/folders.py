"""Publishing a folder that was written beside its destination."""

from __future__ import annotations

import os
import shutil
from pathlib import Path


def replace_folder(staging: Path, target: Path) -> None:
    """Rename ``staging`` to ``target``, replacing an existing ``target``.

    Both must be on one filesystem (``staging`` is written beside ``target``). An existing
    ``target`` is renamed aside first and removed after the swap, so a reader opening the
    path finds either the old folder or the new one, never a mix of the two.
    """
    if not target.exists():
        staging.rename(target)
        return
    old = target.with_name(f".{target.name}.old.{os.getpid()}")
    target.rename(old)
    staging.rename(target)
    shutil.rmtree(old, ignore_errors=True)
