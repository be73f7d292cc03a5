"""Prometheus metrics of one platform process, on a registry of its own (no globals)."""

import gc
import time
from collections.abc import Callable
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

_STAGE_BUCKETS = (
    0.00005,
    0.0001,
    0.00025,
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    1.0,
)


class Metrics:
    """Counters and histograms that `/metrics` exposes."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.messages_in = Counter(
            "autocloud_messages_in",
            "Vehicle messages received, by sub-topic.",
            ["topic"],
            registry=r,
        )
        self.signals_in = Counter(
            "autocloud_signals_stored", "Signal values written to history.", registry=r
        )
        self.dead_letters = Counter(
            "autocloud_dead_letters",
            "Refused messages and values, by reason.",
            ["reason"],
            registry=r,
        )
        self.stage_seconds = Histogram(
            "autocloud_ingest_stage_seconds",
            "Time one ingest batch spends in each stage.",
            ["stage"],
            buckets=_STAGE_BUCKETS,
            registry=r,
        )
        self.batch_size = Histogram(
            "autocloud_ingest_batch_messages",
            "Messages per ingest transaction.",
            buckets=(1, 5, 20, 100, 500, 1000, 2000, 5000),
            registry=r,
        )
        self.ingest_lag = Histogram(
            "autocloud_ingest_lag_seconds",
            "From broker delivery to durable commit.",
            buckets=_STAGE_BUCKETS,
            registry=r,
        )
        self.connected = Gauge(
            "autocloud_connected_vehicles", "Vehicles whose state is online.", registry=r
        )
        self.commit_failures = Counter(
            "autocloud_ingest_commit_failures",
            "Batches whose commit failed (redelivered).",
            registry=r,
        )
        self.gc_pause = Histogram(
            "autocloud_gc_pause_seconds",
            "Pauses of the cyclic garbage collector (every thread waits), by generation.",
            ["generation"],
            buckets=_STAGE_BUCKETS,
            registry=r,
        )

    def watch_gc(self) -> Callable[[], None]:
        """Time every collection into `gc_pause` until the returned function is called.

        A full collection stops every thread of the process; its pauses show directly in
        ingest latency, so operators need to see them.
        """
        timers = [self.gc_pause.labels(str(g)) for g in range(3)]
        started = [0.0]

        def callback(phase: str, info: dict[str, Any]) -> None:
            if phase == "start":
                started[0] = time.perf_counter()
            else:
                timers[info["generation"]].observe(time.perf_counter() - started[0])

        gc.callbacks.append(callback)
        return lambda: gc.callbacks.remove(callback)
