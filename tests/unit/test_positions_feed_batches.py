"""The map's live feed folds committed ingest batches, and ingest builds twin changes for the
live stream only while somebody takes them (`Hub.wants`)."""

import asyncio
import threading

from autocloud.domain.positions import LIVE_FIELDS
from autocloud.domain.protocol import State, Telemetry
from autocloud.domain.records import Value, VehicleRef, WriteBatch
from autocloud.ports.link import Inbound
from autocloud.services.fanout import Change, Hub
from autocloud.services.ingest.service import changes
from autocloud.services.ingest.stages import Batch, Item
from autocloud.services.positions import PositionFeed

LAT = "Vehicle.CurrentLocation.Latitude"
SPEED = "Vehicle.Speed"
VIN = "WVWZZZ1JZXW000001"
NOW = 1_700_000_000_000


def _item(
    message: Telemetry | State, points: list[tuple[str, int, Value]], brand: str = "alpha"
) -> Item:
    item = Item(Inbound(f"vehicles/{VIN}/telemetry", b"{}", NOW), vin=VIN, message=message)
    item.vehicle = VehicleRef(1, brand)
    item.points = points
    return item


def _telemetry(samples: bool) -> Telemetry:
    if samples:
        return Telemetry(v=1, sid="s", seq=1, samples=[])
    return Telemetry(v=1, sid="s", seq=1, ts=NOW, signals={})


def _batch(*items: Item) -> Batch:
    return Batch(list(items), NOW, WriteBatch(received_ms=NOW))


def _fields(feed: PositionFeed) -> dict[str, object]:
    [row] = feed.since(0)[1]
    return dict(zip(LIVE_FIELDS, row.values, strict=True))


def test_a_message_of_several_instants_leaves_each_map_field_at_its_newest_value() -> None:
    feed = PositionFeed()
    feed.follow()  # a map is open
    points: list[tuple[str, int, Value]] = [
        (SPEED, NOW - 1000, 30.0),
        (LAT, NOW - 1000, 48.0),
        (SPEED, NOW - 3000, 5.0),
    ]
    feed.on_commit(_batch(_item(_telemetry(samples=True), points)))
    got = _fields(feed)
    assert (got["speed"], got["lat"], got["online"]) == (30.0, 48.0, 1)


def test_presence_and_telemetry_fold_in_message_order_and_keep_other_fields() -> None:
    feed = PositionFeed()
    feed.follow()  # a map is open
    feed.on_commit(_batch(_item(_telemetry(samples=False), [(SPEED, NOW, 42.0)])))
    offline = _item(State(online=False, sid="s"), [])
    feed.on_commit(_batch(offline))
    got = _fields(feed)
    assert (got["speed"], got["online"]) == (42.0, 0)


def test_a_vin_in_another_brand_starts_from_nothing() -> None:
    feed = PositionFeed()
    feed.follow()  # a map is open
    feed.on_commit(_batch(_item(_telemetry(samples=False), [(SPEED, NOW, 42.0)])))
    feed.on_commit(_batch(_item(_telemetry(samples=False), [(LAT, NOW, 1.0)], brand="beta")))
    got = _fields(feed)
    assert (got["speed"], got["lat"]) == (None, 1.0)
    assert feed.since(0)[1][0].change.brand == "beta"


def test_twin_changes_are_built_only_while_somebody_takes_them() -> None:
    hub = Hub()
    batch = _batch(_item(_telemetry(samples=False), [(SPEED, NOW, 42.0)]))
    assert not hub.wants("twin")
    assert changes(batch, twin=hub.wants("twin")) == []
    listener = hub.listen(lambda c: c.kind == "alert", lambda cs: None, ["alert"])
    assert not hub.wants("twin") and hub.wants("alert")
    hub.unlisten(listener)

    got: list[bool] = []

    def subscribe() -> None:  # a stream subscriber lives on an event loop
        async def main() -> None:
            sub = hub.subscribe(lambda c: True)  # every kind
            got.append(hub.wants("twin"))
            hub.unsubscribe(sub)
            got.append(hub.wants("twin"))

        asyncio.run(main())

    thread = threading.Thread(target=subscribe)
    thread.start()
    thread.join()
    assert got == [True, False]
    [change] = changes(batch, twin=True)
    assert change._built is None  # type: ignore[attr-defined]  # built when a reader needs it
    expected = Change("twin", VIN, "alpha", {"signals": {SPEED: {"value": 42.0, "ts": NOW}}})
    assert (change.kind, change.vin, change.brand, change.data) == (
        expected.kind,
        expected.vin,
        expected.brand,
        expected.data,
    )
