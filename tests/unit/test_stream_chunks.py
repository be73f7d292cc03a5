"""The live stream sends what is queued together as one chunk of SSE events."""

import asyncio

import msgspec

from autocloud.entrypoints.api.routes_stream import encode_changes, take_queued
from autocloud.services.fanout import Change, Subscription


def _events(chunk: bytes) -> list[tuple[str, dict[str, object]]]:
    out = []
    for block in chunk.decode().split("\r\n\r\n")[:-1]:
        kind, data = block.split("\r\n")
        out.append((kind.removeprefix("event: "), msgspec.json.decode(data.removeprefix("data: "))))
    return out


def _sub() -> Subscription:
    loop = asyncio.new_event_loop()
    try:
        return Subscription(loop, asyncio.Queue(), lambda c: True)
    finally:
        loop.close()


def test_queued_changes_become_one_chunk_with_the_lag_on_the_first() -> None:
    sub = _sub()
    sub.lagged = 3
    changes: list[Change | None] = [
        Change("twin", "VIN1", "vw", {"signals": {"Vehicle.Speed": {"value": 1.5, "ts": 7}}}),
        Change("presence", "VIN2", "vw", {"online": False}),
    ]
    assert _events(encode_changes(changes, None, sub)) == [
        (
            "twin",
            {
                "vin": "VIN1",
                "brand": "vw",
                "signals": {"Vehicle.Speed": {"value": 1.5, "ts": 7}},
                "lagged": 3,
            },
        ),
        ("presence", {"vin": "VIN2", "brand": "vw", "online": False}),
    ]
    assert sub.lagged == 0


def test_an_owner_chunk_drops_vins_no_longer_owned_and_stops_at_the_close() -> None:
    sub = _sub()
    changes: list[Change | None] = [
        Change("event", "MINE", "vw", {"type": "crash"}),
        Change("event", "GONE", "vw", {"type": "crash"}),
        None,
    ]
    assert [e[1]["vin"] for e in _events(encode_changes(changes, {"MINE"}, sub))] == ["MINE"]
    assert encode_changes([None], None, sub) == b""


def test_take_queued_takes_what_waits_up_to_the_limit_and_the_close_last() -> None:
    queue: asyncio.Queue[Change | None] = asyncio.Queue()
    for n in range(5):
        queue.put_nowait(Change("event", f"V{n}", "vw", {}))
    assert [c.vin for c in take_queued(queue, 3) if c] == ["V0", "V1", "V2"]
    queue.put_nowait(None)
    queue.put_nowait(Change("event", "AFTER", "vw", {}))
    rest = take_queued(queue, 10)
    assert [c.vin if c else None for c in rest] == ["V3", "V4", None]
    assert queue.qsize() == 1  # nothing is taken past the close
