"""Publishing a folder that was written beside its destination."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
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


@contextmanager
def staged_folder(target: Path, purpose: str) -> Iterator[Path]:
    """A folder beside ``target`` to write into, published as ``target`` when the block
    ends and removed when it raises: readers see the old folder, or the whole new one.

    The folder is readable by others (``mkdtemp`` makes it private), since published
    folders are shared: engines, models and snapshots are read by other pods.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.{purpose}-", dir=target.parent))
    staging.chmod(0o755)
    try:
        yield staging
        replace_folder(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
