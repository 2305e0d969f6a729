"""What the server does, for Prometheus (GET /metrics): requests by route and status, latency, batch sizes,
queue depth, inputs dropped before the model, and how long the artifact took to load and verify."""
from __future__ import annotations

from typing import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)


class ServeMetrics:
    """One registry per app, so two servers in one process (tests) never mix their counts."""

    def __init__(self, max_batch_size: int, queue_depth: Callable[[], int], load_seconds: float):
        self.load_seconds = load_seconds
        self.registry = r = CollectorRegistry()
        self.requests = Counter("glassbox_requests", "HTTP requests answered, by route and status code",
                                ["route", "status"], registry=r)
        self.latency = Histogram("glassbox_request_seconds", "Time from request to answer, by route", ["route"],
                                 buckets=LATENCY_BUCKETS, registry=r)
        sizes = sorted({s for s in (1, 2, 4, 8, 16, 32, 64, 128, 256) if s < max_batch_size} | {max_batch_size})
        self.batch_size = Histogram("glassbox_batch_size", "Inputs in each forward pass (never above max_batch_size)",
                                    buckets=sizes, registry=r)
        self.dropped = Counter("glassbox_inputs_dropped", "Queued inputs dropped before the model because their "
                               "request was abandoned (client gone or deadline passed)", registry=r)
        Gauge("glassbox_queue_depth", "Inputs waiting for the model", registry=r).set_function(queue_depth)
        Gauge("glassbox_model_load_seconds", "Seconds to load the artifact and verify its weights' sha256",
              registry=r).set(load_seconds)

    def watch_in_flight(self, held: Callable[[], int]) -> None:
        Gauge("glassbox_requests_in_flight", "Requests received and not yet answered (probes and scrapes, answered outside the count, not included)",
              registry=self.registry).set_function(held)

    def observe(self, route: str, status: int, seconds: float) -> None:
        self.requests.labels(route, str(status)).inc()
        self.latency.labels(route).observe(seconds)

    def text(self) -> bytes:
        return generate_latest(self.registry)
