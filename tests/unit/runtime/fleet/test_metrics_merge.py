"""A multi-process server exposes the series one process would: summed where they add up."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from recops_contracts import metrics as m
from recops_runtime.fleet.metrics_merge import merge_expositions
from recops_runtime.telemetry.series import RuntimeMetrics


def _samples(text: bytes) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text.decode())
        for s in family.samples
    }


def test_counters_histograms_and_queue_depth_add_up_other_gauges_do_not() -> None:
    processes = [RuntimeMetrics(), RuntimeMetrics()]
    for n, metrics in enumerate(processes, start=1):
        metrics.version_loaded("v1", "cpu-onnxruntime", "3")
        served = metrics.served("v1", "cpu-onnxruntime")
        for _ in range(n):
            served.ok.inc()
            served.latency.observe(0.004)
        metrics.online_hits.labels("v1").inc(n)
        metrics.queue_depth.labels("v1").set(n)
    merged = _samples(merge_expositions([p.exposition().decode() for p in processes]))
    v1 = (("target", "cpu-onnxruntime"), ("version", "v1"))
    assert merged[m.total(m.REQUESTS), (("code", "OK"), *v1)] == 3
    assert merged[m.total(m.ONLINE_HITS), (("version", "v1"),)] == 3
    assert merged[f"{m.LATENCY}_count", v1] == 3
    assert merged[f"{m.LATENCY}_bucket", (("le", "0.005"), *v1)] == 3
    assert merged[f"{m.LATENCY}_bucket", (("le", "0.002"), *v1)] == 0
    assert merged[m.QUEUE_DEPTH, (("version", "v1"),)] == 3
    info = (("model_version", "3"), *v1)
    assert merged[m.MODEL_INFO, info] == 1  # loaded in both: still one loaded version
