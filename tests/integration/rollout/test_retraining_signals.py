"""A RecModel's live signals for automatic retraining, read from a real Prometheus."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from prometheus_client import start_http_server

from recops_cli.quickstart.processes import free_port
from recops_operator.clients.prometheus import PrometheusClient
from recops_operator.queries import promql
from recops_operator.retraining.signals import read_signals
from recops_runtime.telemetry.series import RuntimeMetrics
from recops_testkit.polling import read_until


async def test_hit_rate_and_new_interactions_of_one_recmodel(
    start_prometheus: Callable[..., str],
) -> None:
    registries, servers, labels = {}, [], {}
    for name in ("movies", "books"):  # both serve a version "4"
        metrics = RuntimeMetrics()
        port = free_port()
        servers.append(start_http_server(port, addr="127.0.0.1", registry=metrics.registry))
        registries[name] = metrics
        labels[f"127.0.0.1:{port}"] = {"namespace": "ml", "recops_io_recmodel": name}
        metrics.version_loaded("4", "cpu-onnxruntime", "4")
        metrics.feedback_events.labels("4", "watch").inc(0)
    try:
        address = start_prometheus(list(labels), labels)
        movies, books = registries["movies"], registries["books"]
        for _ in range(4):
            movies.recommendations.labels("4", "cpu-onnxruntime").inc(100)
            movies.online_hits.labels("4").inc(10)
            movies.feedback_events.labels("4", "click").inc(10)
            movies.feedback_events.labels("4", "watch").inc(5)
            books.recommendations.labels("4", "cpu-onnxruntime").inc(100)
            books.online_hits.labels("4").inc(90)
            books.feedback_events.labels("4", "click").inc(500)
            # The serving pods of movies report two drift statistics triggered, books none.
            movies.drift_triggered.labels("4", "popularity_psi").set(1)
            movies.drift_triggered.labels("4", "score_psi").set(1)
            movies.drift_triggered.labels("4", "length_psi").set(0)
            books.drift_triggered.labels("4", "popularity_psi").set(0)
            await asyncio.sleep(1.0)
        prometheus = PrometheusClient(address, timeout=10.0)
        # Until the last increments of both targets are scraped (1 s scrapes, later on a
        # loaded machine): books' count is read first, then movies' must be whole too.
        await read_until(
            lambda: read_signals(
                prometheus,
                promql.scope_of("ml", "books"),
                stable=None,
                window_seconds=None,
                since_seconds=60,
            ),
            lambda books: (books.new_interactions or 0) >= 2000,
        )
        signals = await read_until(
            lambda: read_signals(
                prometheus,
                promql.scope_of("ml", "movies"),
                stable="4",
                window_seconds=60,
                since_seconds=60,
            ),
            lambda movies: (movies.recommendations or 0) >= 400,
        )
        assert signals.error is None and signals.version == "4"
        assert (signals.hits, signals.recommendations) == (40, 400)
        assert signals.hit_rate == 0.1
        assert signals.new_interactions == 60
        only_count = await read_signals(
            prometheus,
            promql.scope_of("ml", "books"),
            stable=None,
            window_seconds=None,
            since_seconds=60,
        )
        assert only_count.hits is None and only_count.new_interactions == 2000
        for name, expected in (("movies", 2), ("books", 0)):
            drift = await read_signals(
                prometheus,
                promql.scope_of("ml", name),
                stable="4",
                window_seconds=None,
                since_seconds=None,
                statistics=True,
            )
            assert drift.error is None and drift.triggered_statistics == expected
    finally:
        for server, thread in servers:
            server.shutdown()
            thread.join(5)


async def test_an_unreachable_prometheus_is_reported_not_raised() -> None:
    prometheus = PrometheusClient(f"http://127.0.0.1:{free_port()}", timeout=2.0)
    signals = await read_signals(
        prometheus,
        promql.scope_of("ml", "movies"),
        stable="4",
        window_seconds=60,
        since_seconds=60,
    )
    assert signals.error is not None and signals.hit_rate is None
