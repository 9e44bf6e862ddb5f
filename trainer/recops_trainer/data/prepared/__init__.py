"""Prepared snapshots of the large archives: per-user Parquet rows written in bounded
memory (``writer``) and read back row group by row group (``reader``)."""

from recops_trainer.data.prepared.reader import (
    is_prepared,
    iter_rows,
    part_files,
    popular_items,
    read_manifest,
    to_snapshot,
    verify,
)
from recops_trainer.data.prepared.writer import prepare, prepared_or_prepare

__all__ = [
    "is_prepared",
    "iter_rows",
    "part_files",
    "popular_items",
    "prepare",
    "prepared_or_prepare",
    "read_manifest",
    "to_snapshot",
    "verify",
]
