"""The live positions feed forgets a removed vehicle.

`PositionFeed` keeps each VIN's latest map fields and folds every new change onto them. A
vehicle deleted and registered again (another tenant, or the same brand for a new owner)
used to inherit its former life's position, speed and battery level: its first `presence`
change after registration sent them to the new tenant's streams. The rows of removed
vehicles were also never dropped.
"""

import json

import pytest

from autocloud.bootstrap import SYSTEM
from autocloud.entrypoints.api.routes_stream import change_filter
from autocloud.services.fanout import Change
from autocloud.services.positions import PositionCursor, PositionFeed
from tests.api.conftest import NOW, SPEED, Env, state

LAT = "Vehicle.CurrentLocation.Latitude"
LON = "Vehicle.CurrentLocation.Longitude"


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_vin_in_another_tenant_does_not_inherit_the_former_tenant_s_fields() -> None:
    feed, clock = PositionFeed(), Clock()
    feed.follow()  # a map is open
    vin = "1HGCM82633A004352"
    signals = {LAT: {"value": 48.1, "ts": 1}, LON: {"value": 11.5, "ts": 1}}
    feed.fold([Change("twin", vin, "alpha", {"signals": signals})])
    beta = PositionCursor(feed, change_filter("beta", None), 1.0, clock)
    feed.fold([Change("presence", vin, "beta", {"online": True})])  # registered in beta now
    clock.now += 1.0
    body = json.loads(beta.take(NOW) or "null")
    assert body["vin"] == [vin] and body["online"] == [1]
    assert body["lat"] == [None] and body["lon"] == [None]  # alpha's position is not beta's


def test_forget_drops_a_vehicle_s_row() -> None:
    feed, clock = PositionFeed(), Clock()
    feed.follow()  # a map is open
    vin = "1HGCM82633A004352"
    feed.fold([Change("twin", vin, "alpha", {"signals": {LAT: {"value": 48.1, "ts": 1}}})])
    feed.forget(vin)
    assert feed.since(0)[1] == []
    cursor = PositionCursor(feed, change_filter("alpha", None), 1.0, clock)
    feed.fold([Change("presence", vin, "alpha", {"online": True})])
    clock.now += 1.0
    assert json.loads(cursor.take(NOW) or "null")["lat"] == [None]


@pytest.mark.timeout(30)
def test_removing_a_vehicle_through_the_registry_forgets_its_position(env: Env) -> None:
    assert env.platform.positions is not None
    feed = env.platform.positions.feed
    feed.follow()  # a map is open
    env.ingest(state(env.alpha.vin, True, NOW - 60_000))
    env.send(env.alpha.vin, NOW - 50_000, {LAT: 48.1, LON: 11.5, SPEED: 30.0})
    assert env.alpha.vin in {row.change.vin for row in feed.since(0)[1]}
    env.platform.registry.remove_vehicle(SYSTEM, env.alpha.vin)
    assert env.alpha.vin not in {row.change.vin for row in feed.since(0)[1]}
