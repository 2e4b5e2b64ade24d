"""Prometheus metrics, one registry per app instance (several apps can live in one test process).

No multiprocess mode: one uvicorn worker per pod, so nothing is written to disk.
"""

from __future__ import annotations

import time
from typing import Literal

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, ProcessCollector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

Layer = Literal["local", "redis", "fill", "degraded"]
LAYERS = ("local", "redis", "fill", "degraded")

LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        ProcessCollector(registry=self.registry)
        self.requests = Counter(
            "http_requests", "HTTP requests by route template, method and status.",
            ["route", "method", "status"], registry=self.registry,
        )
        self.latency = Histogram(
            "http_request_duration_seconds", "Request latency by route template.",
            ["route"], buckets=LATENCY_BUCKETS, registry=self.registry,
        )
        # layer: local (in-process), redis, fill (a Redis miss answered by loading the dataset
        # here or waiting for the fleet's loader), degraded (a Redis miss answered from this
        # pod's own load while Redis refuses writes); hits{local} + misses{local} = every lookup.
        self.cache_hits = Counter("cache_hits", "Cache hits by layer.", ["layer"], registry=self.registry)
        self.cache_misses = Counter("cache_misses", "Cache misses by layer.", ["layer"], registry=self.registry)
        self.dataset_loads = Counter(
            "dataset_loads", "Dataset loads done by this process (the fleet-wide lock holder).",
            registry=self.registry,
        )
        self.redis_errors = Counter(
            "redis_errors", "Requests answered 503 because Redis was unreachable or failed.",
            registry=self.registry,
        )
        self.read_fallbacks = Counter(
            "redis_read_fallbacks", "Cache reads sent to the primary because the read replica failed.",
            registry=self.registry,
        )
        self.fill_timeouts = Counter(
            "cache_fill_timeouts", "Requests answered 503 because no loader filled the cache in time.",
            registry=self.registry,
        )
        self.dataset_load_failures = Counter(
            "dataset_load_failures", "Dataset loads that failed: unusable dataset, or a read past its time bound.",
            ["reason"], registry=self.registry,
        )
        for reason in ("dataset_unavailable", "dataset_load_stuck"):  # loader.py's reasons, shown at 0
            self.dataset_load_failures.labels(reason)
        self.corrupt_values = Counter(
            "cache_corrupt_values", "Values read from Redis that were not valid (junk, wrong key type): "
            "treated as misses.", registry=self.registry,
        )
        self.degraded = Gauge(
            "cache_degraded", "1 while Redis refuses writes (full, or read-only) and this pod serves its "
            "own dataset load, not cached fleet-wide (write_refusals.py).", registry=self.registry,
        )
        self.write_refusals = Counter(
            "redis_write_refusals", "Writes Redis refused: reason oom (maxmemory, noeviction) or readonly "
            "(a replica).", ["reason"], registry=self.registry,
        )
        for reason in ("oom", "readonly"):  # write_refusals.py's reasons, shown at 0
            self.write_refusals.labels(reason)
        # Pre-bound children: the hot path does no label lookups.
        self.hit = {layer: self.cache_hits.labels(layer) for layer in LAYERS}
        self.miss = {layer: self.cache_misses.labels(layer) for layer in ("local", "redis")}
        self._request_children: dict[tuple[str, str, int], tuple[Counter, Histogram]] = {}

    def observe_request(self, route: str, method: str, status: int, seconds: float) -> None:
        key = (route, method, status)
        children = self._request_children.get(key)
        if children is None:
            children = (self.requests.labels(route, method, str(status)), self.latency.labels(route))
            self._request_children[key] = children
        children[0].inc()
        children[1].observe(seconds)

    def value(self, name: str, labels: dict[str, str] | None = None) -> float:
        """A sample's current value (0 if absent); used by tests and the benchmark."""
        return self.registry.get_sample_value(name, labels or {}) or 0.0


class MetricsMiddleware:
    """Pure ASGI (no BaseHTTPMiddleware): counts and times every HTTP request by route template."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def send_with_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_with_status)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            self.metrics.observe_request(template, scope["method"], status, time.perf_counter() - start)
