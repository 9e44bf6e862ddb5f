"""The checked-in gRPC stubs are exactly what the .proto generates."""

from __future__ import annotations

from recops_runtime.protogen import stale_files


def test_checked_in_stubs_match_the_proto() -> None:
    assert stale_files() == [], "run `python -m recops_runtime.protogen` and commit the result"
