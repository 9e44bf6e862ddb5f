"""A newly loaded version exports the series a rollout compares, at zero."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from recops_runtime.telemetry.series import RuntimeMetrics


def _samples(metrics: RuntimeMetrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = metrics.exposition().decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_loaded_version_starts_its_rollout_series_at_zero() -> None:
    metrics = RuntimeMetrics()
    metrics.version_loaded("v2", "cpu-onnxruntime", "7")
    samples = _samples(metrics)
    t = ("target", "cpu-onnxruntime")
    assert samples[("recops_requests_total", (("code", "OK"), t, ("version", "v2")))] == 0.0
    assert samples[("recops_recommendations_total", (t, ("version", "v2")))] == 0.0
    assert samples[("recops_online_hits_total", (("version", "v2"),))] == 0.0
    assert samples[("recops_feedback_events_total", (("event", "click"), ("version", "v2")))] == 0.0
    assert samples[("recops_model_info", (("model_version", "7"), t, ("version", "v2")))] == 1.0
