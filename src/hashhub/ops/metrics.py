"""Prometheus metrics, one registry per app: requests, latency, index size and sync lag.

Labels are route *templates* (`/api/v1/items/{item_id}`), never raw paths, so neither hashes nor
ids reach the metrics and the number of series stays bounded.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

CONTENT_TYPE = CONTENT_TYPE_LATEST
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class Metrics:
    def __init__(
        self,
        role: str,
        index_size: Callable[[], float],
        sync_lag: Callable[[], float] | None = None,
    ) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self._series: dict[tuple[str, str, int], tuple[Any, Any]] = {}
        self.requests = Counter(
            "hashhub_http_requests",
            "HTTP requests answered, by route template, method and status.",
            ("route", "method", "status"),
            registry=self.registry,
        )
        self.latency = Histogram(
            "hashhub_http_request_duration_seconds",
            "Time from request start to the end of the response, by route template.",
            ("route", "method"),
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        size = Gauge("hashhub_index_items", f"Items in the {role}'s in-memory index.", registry=self.registry)
        size.set_function(index_size)
        if sync_lag is not None:
            lag = Gauge(
                "hashhub_sync_lag_seconds",
                "Seconds since the least recently synced hub was last synced successfully (-1: never).",
                registry=self.registry,
            )
            lag.set_function(sync_lag)

    def observe(self, route: str, method: str, status: int, seconds: float) -> None:
        # The labelled children are looked up once per series (labels() costs more than inc()).
        series = self._series.get((route, method, status))
        if series is None:
            series = self._series[(route, method, status)] = (
                self.requests.labels(route, method, str(status)),
                self.latency.labels(route, method),
            )
        series[0].inc()
        series[1].observe(seconds)

    def render(self) -> bytes:
        return generate_latest(self.registry)
