"""Group sync: on a store that defers its fsync, ingest publishes a batch at commit and
acknowledges it only after a later sync, on a thread of its own."""

import threading
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import pytest

from autocloud.domain.catalog import Catalog
from autocloud.domain.clock import FixedClock
from autocloud.domain.records import VehicleRef
from autocloud.ports.link import Inbound
from autocloud.services.fanout import Hub
from autocloud.services.ingest.service import IngestService, Pipeline
from autocloud.services.metrics import Metrics
from tests.support.memory import MemoryTelemetry
from tests.unit.test_ingest_pipeline import NOW, A, RecordingLink, msg, tele


class GatedStore(MemoryTelemetry):
    """A deferring memory store whose `sync` waits until the test opens the gate."""

    def __init__(self) -> None:
        super().__init__({A: VehicleRef(1, "alpha")}, defers_sync=True)
        self.gate = threading.Event()
        self.gate.set()
        self.waiting = threading.Event()  # a sync is waiting at the gate
        self.durable_flags: list[bool] = []
        self.events: list[str] = []
        self.fail_housekeeping = False

    def commit(self, batch: Any, *, durable: bool = True) -> None:
        self.durable_flags.append(durable)
        super().commit(batch, durable=durable)

    def sync(self) -> None:
        if not self.gate.is_set():
            self.waiting.set()
        assert self.gate.wait(10)
        super().sync()
        self.events.append("sync")

    def after_sync(self) -> None:
        if self.fail_housekeeping:
            raise RuntimeError("simulated checkpoint defect")
        super().after_sync()
        self.events.append("housekeeping")


class InboxLink(RecordingLink):
    """A link whose messages the test pushes in, through the sink ingest gave it."""

    sink: Callable[[Inbound], None]

    def __init__(self, events: list[str] | None = None) -> None:
        super().__init__()
        self.events = events if events is not None else []
        self.stopped = False

    def start(self, sink: Any) -> None:
        self.sink = sink

    def ack(self, messages: Sequence[Inbound]) -> None:
        assert not self.stopped, "acknowledged through a stopped link"
        super().ack(messages)
        self.events.append("ack")

    def stop(self) -> None:
        self.stopped = True


def until(condition: Callable[[], bool], timeout_s: float = 10) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.005)


def _running(store: GatedStore, *, deferred: bool = True) -> tuple[IngestService, InboxLink, Hub]:
    metrics = Metrics()
    pipeline = Pipeline(
        store, Catalog.builtin(None), metrics, max_payload_bytes=4096, max_future_skew_ms=60_000
    )
    hub = Hub()
    service = IngestService(
        store, pipeline, hub, metrics, FixedClock(NOW), wait_ms=0, deferred_sync=deferred
    )
    link = InboxLink(store.events)
    service.start(link)
    return service, link, hub


def _send(link: InboxLink, seqs: Sequence[int]) -> None:
    for seq in seqs:
        message = msg(A, tele(seq, {"Vehicle.Speed": float(seq)}))
        link.sink(Inbound(message.topic, message.payload, NOW, qos=1, token=seq))


@pytest.fixture
def store() -> Iterator[GatedStore]:
    yield GatedStore()


def test_a_batch_is_acknowledged_only_after_the_sync_that_follows_its_commit(
    store: GatedStore,
) -> None:
    store.gate.clear()  # the disk is slow
    service, link, hub = _running(store)
    changes: list[Any] = []
    hub.listen(lambda change: change.kind == "twin", changes.extend, kinds=("twin",))
    try:
        _send(link, [1, 2, 3])
        until(lambda: service.processed == 3)
        # Committed and published to live subscribers without waiting for the disk, and
        # not acknowledged.
        assert len(changes) == 3
        assert store.durable_flags and not any(store.durable_flags)
        assert len(store.unsynced) >= 1
        assert link.acked == []
        store.gate.set()
        until(lambda: len(link.acked) == 3)
        assert [m.token for m in link.acked] == [1, 2, 3]
        assert store.unsynced == []
        # The syncer caught up with everything committed while it waited, in few syncs.
        assert 1 <= store.syncs <= 3
    finally:
        store.gate.set()
        service.stop(drain_s=2)


def test_batches_committed_during_one_slow_sync_share_the_next_sync(store: GatedStore) -> None:
    service, link, _hub = _running(store)
    try:
        _send(link, [1])
        until(lambda: len(link.acked) == 1)
        store.gate.clear()
        syncs_before = store.syncs
        _send(link, [2])
        assert store.waiting.wait(10)  # the syncer now waits on the gate with message 2
        _send(link, range(3, 11))
        until(lambda: service.processed == 10)
        assert len(link.acked) == 1
        store.gate.set()
        until(lambda: len(link.acked) == 10)
        # One sync for message 2, one for the eight committed while it waited.
        assert store.syncs - syncs_before == 2
    finally:
        store.gate.set()
        service.stop(drain_s=2)


def test_stop_syncs_and_acknowledges_what_was_committed(store: GatedStore) -> None:
    store.gate.clear()
    service, link, _hub = _running(store)
    _send(link, [1, 2])
    until(lambda: service.processed == 2)
    assert link.acked == []
    threading.Timer(0.1, store.gate.set).start()
    service.stop(drain_s=5)
    assert sorted(m.token for m in link.acked) == [1, 2]
    assert not service.alive


def test_a_failed_sync_acknowledges_nothing_and_stops_ingest(store: GatedStore) -> None:
    store.fail_sync = True
    service, link, _hub = _running(store)
    try:
        _send(link, [1, 2])
        until(lambda: service.durability_lost is not None)
        until(lambda: not service.alive)
        assert link.acked == []
        assert "fsync" in (service.durability_lost or "")
        _send(link, [3])  # arrives after the stop: never taken, never acknowledged
        time.sleep(0.05)
        assert service.processed <= 2
        assert link.acked == []
    finally:
        service.stop(drain_s=1)


def test_with_the_setting_off_every_commit_is_durable_and_acknowledged_at_once(
    store: GatedStore,
) -> None:
    service, link, _hub = _running(store, deferred=False)
    try:
        _send(link, [1, 2, 3])
        until(lambda: len(link.acked) == 3)
        assert all(store.durable_flags)
        assert store.syncs == 0
    finally:
        service.stop(drain_s=2)


def test_housekeeping_follows_the_acknowledgements(store: GatedStore) -> None:
    service, link, _hub = _running(store)
    try:
        _send(link, [1])
        until(lambda: "housekeeping" in store.events)
        assert store.events[:3] == ["sync", "ack", "housekeeping"]
    finally:
        service.stop(drain_s=2)


def test_a_failure_in_the_sync_thread_stops_ingest_and_shows_in_alive(store: GatedStore) -> None:
    store.fail_housekeeping = True
    service, link, _hub = _running(store)
    try:
        _send(link, [1])
        until(lambda: service.durability_lost is not None)
        until(lambda: not service.alive)
        assert "simulated checkpoint defect" in (service.durability_lost or "")
    finally:
        service.stop(drain_s=1)
