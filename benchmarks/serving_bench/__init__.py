"""The serving benchmark's parts, run by ``benchmarks/serving.py``: the engines and their
raw speed, the load generator, the servers it loads, and the report."""

from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
CONCURRENCY = (1, 8, 64)
