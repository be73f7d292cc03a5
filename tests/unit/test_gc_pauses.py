"""The garbage collector's pauses are exported, and only while watched."""

import gc

from autocloud.services.metrics import Metrics


def _full_collections(metrics: Metrics) -> float:
    value = metrics.registry.get_sample_value(
        "autocloud_gc_pause_seconds_count", {"generation": "2"}
    )
    return value or 0.0


def test_full_collections_are_timed_while_watched() -> None:
    metrics = Metrics()
    unwatch = metrics.watch_gc()
    try:
        gc.collect()
        gc.collect()
    finally:
        unwatch()
    assert _full_collections(metrics) == 2.0
    total = metrics.registry.get_sample_value("autocloud_gc_pause_seconds_sum", {"generation": "2"})
    assert total is not None and total > 0.0

    gc.collect()
    assert _full_collections(metrics) == 2.0  # no longer watched
