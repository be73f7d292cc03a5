"""The ingest stages on a memory store: what is kept, what is dead-lettered and why."""

import threading
import time
from collections.abc import Iterator, Sequence
from typing import Any

import msgspec
import pytest

from autocloud.domain.catalog import Catalog
from autocloud.domain.clock import FixedClock
from autocloud.domain.records import VehicleRef
from autocloud.ports.link import Inbound
from autocloud.services.fanout import Hub
from autocloud.services.ingest.service import IngestService, Pipeline
from autocloud.services.metrics import Metrics
from tests.support.memory import MemoryTelemetry

NOW = 1_800_000_000_000
A, B = "WVWZZZ1JZXW000001", "WVWZZZ1JZXW000002"


class RecordingLink:
    def __init__(self) -> None:
        self.acked: list[Inbound] = []

    def start(self, sink: Any) -> None: ...
    def stop(self) -> None: ...
    def send(self, vin: str, subtopic: str, payload: bytes, *, retain: bool = False) -> None: ...
    def ack(self, messages: Sequence[Inbound]) -> None:
        self.acked.extend(messages)


@pytest.fixture
def env() -> Iterator[tuple[IngestService, MemoryTelemetry, RecordingLink]]:
    store = MemoryTelemetry({A: VehicleRef(1, "alpha"), B: VehicleRef(2, "beta")})
    metrics = Metrics()
    pipeline = Pipeline(
        store, Catalog.builtin(None), metrics, max_payload_bytes=4096, max_future_skew_ms=60_000
    )
    service = IngestService(store, pipeline, Hub(), metrics, FixedClock(NOW))
    link = RecordingLink()
    service.attach(link)  # a link that acknowledges without a broker
    yield service, store, link


def msg(vin: str, body: Any, kind: str = "telemetry") -> Inbound:
    payload = body if isinstance(body, bytes) else msgspec.json.encode(body)
    return Inbound(f"vehicles/{vin}/{kind}", payload, NOW, token=(0, None))  # from link 0


def tele(
    seq: int, signals: dict[str, Any], ts: int = NOW - 1000, sid: str = "s1", **extra: Any
) -> dict[str, Any]:
    return {"v": 1, "sid": sid, "seq": seq, "ts": ts, "signals": signals, **extra}


def reasons(service_batch: Any) -> list[str]:
    return sorted(d.reason for d in service_batch.out.dead_letters)


def test_valid_message_reaches_history_and_twin(env: Any) -> None:
    service, store, link = env
    batch = service.handle([msg(A, tele(1, {"Vehicle.Speed": 50, "Vehicle.IsMoving": True}))])
    assert reasons(batch) == []
    [frame] = batch.out.history
    assert frame.values == {
        store.ids["Vehicle.Speed"]: 50.0,
        store.ids["Vehicle.IsMoving"]: True,
    }
    assert batch.out.twin == [frame]  # one frame: one history row and one twin update
    assert len(link.acked) == 1


def test_every_bad_input_is_dead_lettered_and_acknowledged(env: Any) -> None:
    service, _store, link = env
    messages = [
        msg(A, b"{not json"),
        msg(A, tele(2, {"Vehicle.Speed": "fast"})),
        msg(A, tele(3, {"Vehicle.CurrentLocation.Latitude": 91.0})),
        msg(A, tele(4, {"Vehicle.NoSuchSignal": 1})),
        msg(A, tele(5, {"Vehicle.Speed": 1}, ts=NOW + 3_600_000)),
        msg(A, tele(6, {"Vehicle.Speed": 1}, ts=5)),
        msg(A, tele(7, {"Vehicle.Speed": 1}, vin=B)),
        msg("WVWZZZ1JZXW999999", tele(1, {"Vehicle.Speed": 1})),
        msg(A, b"x" * 5000),
        Inbound("vehicles/oops", b"{}", NOW, token=(0, None)),
        msg(A, {"v": 1, "sid": "s1", "seq": 8, "ts": NOW, "type": "party"}, kind="events"),
    ]
    batch = service.handle(messages)
    assert reasons(batch) == sorted(
        [
            "malformed",
            "wrong_type",
            "out_of_range",
            "unknown_signal",
            "future_timestamp",
            "invalid_timestamp",
            "vin_mismatch",
            "unknown_vehicle",
            "oversize",
            "bad_topic",
            "unknown_event",
        ]
    )
    assert batch.out.history == []
    assert all(d.payload for d in batch.out.dead_letters)
    assert len(link.acked) == len(messages)  # dead-lettered counts as handled


def test_good_values_of_a_partly_bad_message_are_kept(env: Any) -> None:
    service, _store, _ = env
    batch = service.handle(
        [
            msg(
                A,
                tele(
                    1,
                    {
                        "Vehicle.Speed": 80.5,
                        "Vehicle.CurrentLocation.Latitude": 400,
                        "Vehicle.Bogus": 1,
                    },
                ),
            )
        ]
    )
    assert [list(f.values.values()) for f in batch.out.history] == [[80.5]]
    assert reasons(batch) == ["out_of_range", "unknown_signal"]


def test_duplicates_are_refused_across_batches_and_restarts(env: Any) -> None:
    service, store, _ = env
    service.handle([msg(A, tele(1, {"Vehicle.Speed": 1}))])
    again = service.handle(
        [msg(A, tele(1, {"Vehicle.Speed": 1})), msg(A, tele(1, {"Vehicle.Speed": 1}, sid="s2"))]
    )
    assert reasons(again) == ["duplicate"]
    # a new pipeline (restart) reads the persisted windows
    metrics = Metrics()
    fresh = IngestService(
        store,
        Pipeline(
            store, Catalog.builtin(None), metrics, max_payload_bytes=4096, max_future_skew_ms=60_000
        ),
        Hub(),
        metrics,
        FixedClock(NOW),
    )
    fresh.attach(RecordingLink())
    assert reasons(fresh.handle([msg(A, tele(1, {"Vehicle.Speed": 1}))])) == ["duplicate"]


def test_twin_takes_the_latest_sample_regardless_of_arrival_order(env: Any) -> None:
    service, _store, _ = env
    batch = service.handle(
        [
            msg(A, tele(2, {"Vehicle.Speed": 20}, ts=NOW - 1000)),
            msg(A, tele(1, {"Vehicle.Speed": 10}, ts=NOW - 2000)),
            msg(
                A,
                {
                    "v": 1,
                    "sid": "s1",
                    "seq": 3,
                    "samples": [
                        {"ts": NOW - 500, "signals": {"Vehicle.Speed": 30}},
                        {"ts": NOW - 3000, "signals": {"Vehicle.Speed": 5}},
                    ],
                },
            ),
        ]
    )
    # Every instant is a frame for both; the store keeps the newest of each signal in the twin.
    newest = max(batch.out.twin, key=lambda frame: frame.ts)
    assert list(newest.values.values()) == [30.0]
    assert sorted(f.ts for f in batch.out.history) == [
        NOW - 3000,
        NOW - 2000,
        NOW - 1000,
        NOW - 500,
    ]


def test_store_outage_acknowledges_nothing(env: Any) -> None:
    service, store, link = env
    store.fail_next = 1
    from autocloud.domain.errors import StoreUnavailable

    with pytest.raises(StoreUnavailable):
        service.handle([msg(A, tele(1, {"Vehicle.Speed": 1}))])
    assert link.acked == []
    # the retry is not mistaken for a duplicate: windows are adopted only after commit
    batch = service.handle([msg(A, tele(1, {"Vehicle.Speed": 1}))])
    assert reasons(batch) == [] and len(link.acked) == 1


def test_state_and_events(env: Any) -> None:
    service, _, _ = env
    batch = service.handle(
        [
            msg(A, {"online": True, "ts": NOW - 10, "sid": "s1"}, kind="state"),
            msg(B, b'{"online": false}', kind="state"),
            msg(
                A,
                {
                    "v": 1,
                    "sid": "s1",
                    "seq": 9,
                    "ts": NOW - 5,
                    "type": "dtc.raised",
                    "data": {"code": "P0301"},
                },
                kind="events",
            ),
        ]
    )
    # Presence is timed by the platform's clock, whatever the vehicle's clock says.
    assert [(p.vehicle_id, p.online, p.since_ms) for p in batch.out.presence] == [
        (1, True, NOW),
        (2, False, NOW),
    ]
    assert [(e.type, e.data) for e in batch.out.events] == [("dtc.raised", {"code": "P0301"})]


def test_a_retained_state_replay_is_marked(env: Any) -> None:
    service, _, _ = env
    replayed = msg(A, b'{"online": false}', kind="state")
    replayed.retain = True
    batch = service.handle([replayed])
    assert [p.replay for p in batch.out.presence] == [True]


def test_metrics_count_reasons(env: Any) -> None:
    service, _, _ = env
    service.handle([msg(A, b"{"), msg(A, tele(1, {"Vehicle.Speed": 1}))])
    text = __import__("prometheus_client").generate_latest(service._metrics.registry).decode()
    assert 'autocloud_dead_letters_total{reason="malformed"} 1.0' in text
    assert "autocloud_signals_stored_total 1.0" in text


def test_a_poison_message_is_isolated_and_dead_lettered(env: Any, monkeypatch: Any) -> None:
    """A defect triggered by one message costs that message a dead letter, not the batch."""
    service, store, link = env
    real = service.pipeline.run

    def run(messages: Any, now_ms: int) -> Any:
        if any(b"poison" in m.payload for m in messages):
            raise RuntimeError("boom")
        return real(messages, now_ms)

    monkeypatch.setattr(service.pipeline, "run", run)
    service._running.set()
    good = msg(A, tele(1, {"Vehicle.Speed": 1}))
    bad = msg(A, b'{"poison": true}')
    service._until_committed([good, bad])
    assert len(link.acked) == 2
    kept = [d for b in store.batches for d in b.dead_letters]
    assert [(d.reason, d.payload) for d in kept] == [("internal_error", b'{"poison": true}')]
    assert "RuntimeError: boom" in kept[0].detail
    assert [list(f.values.values()) for b in store.batches for f in b.history] == [[1.0]]


def test_huge_seq_jumps_and_values_are_refused_or_cheap(env: Any) -> None:
    service, _store, link = env
    batch = service.handle(
        [
            msg(A, tele(1, {"Vehicle.Speed": 1})),
            msg(A, tele(2**50, {"Vehicle.Speed": 2})),  # a jump: accepted, window reset
            msg(A, b'{"v":1,"sid":"s1","seq":18446744073709551616,"ts":1,"signals":{}}'),
        ]
    )
    assert reasons(batch) == ["schema"]
    assert len(link.acked) == 3


def test_an_oversize_payload_keeps_only_a_prefix(env: Any) -> None:
    service, _, _ = env
    batch = service.handle([msg(A, b"y" * 100_000)])
    [dead] = batch.out.dead_letters
    assert (dead.reason, len(dead.payload)) == ("oversize", 4096)
    assert "100000 bytes" in dead.detail


def _service(batch: int, wait_ms: int) -> IngestService:
    store = MemoryTelemetry({A: VehicleRef(1, "alpha")})
    metrics = Metrics()
    pipeline = Pipeline(
        store, Catalog.builtin(None), metrics, max_payload_bytes=4096, max_future_skew_ms=60_000
    )
    return IngestService(
        store, pipeline, Hub(), metrics, FixedClock(NOW), batch=batch, wait_ms=wait_ms
    )


def test_a_batch_takes_what_arrives_within_the_wait_after_its_first_message() -> None:
    service = _service(batch=100, wait_ms=300)
    service.submit(msg(A, b"1"))
    later = threading.Timer(0.05, lambda: [service.submit(msg(A, b"2")) for _ in range(2)])
    later.start()
    taken = service._take()
    later.join()
    assert [m.payload for m in taken] == [b"1", b"2", b"2"]
    assert service._take() == []  # nothing left: the next take waits out its timeout


def test_a_batch_stops_at_its_size_and_leaves_the_rest_queued() -> None:
    service = _service(batch=3, wait_ms=1000)
    for n in range(5):
        service.submit(msg(A, str(n).encode()))
    started = time.monotonic()
    assert [m.payload for m in service._take()] == [b"0", b"1", b"2"]
    assert time.monotonic() - started < 0.9  # a full batch does not wait
    assert [m.payload for m in service._take()] == [b"3", b"4"]
