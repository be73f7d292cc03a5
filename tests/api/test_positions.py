"""The fleet map's compact positions: the snapshot (`GET /v1/fleet/positions`) and the live
stream's `positions` kind (`/v1/stream?kinds=positions`).

Both are tenant- and owner-scoped exactly like `/v1/stream` (the same `change_filter`) and
`/v1/fleet` (`Principal.scope`, `Principal.vin_filter`); the wrong-tenant and owner walks
(test_tenancy.py, test_owner_scope.py) cover the routes, these tests the content.
"""

import gzip
import json
import zlib
from collections.abc import Iterator
from typing import Any

import pytest
from starlette.requests import Request

from autocloud.bootstrap import SYSTEM
from autocloud.domain.positions import LIVE_FIELDS, compact, fields_of_signals
from autocloud.entrypoints.api.routes_stream import change_filter
from autocloud.entrypoints.api.sse_gzip import accepts_gzip
from autocloud.services.fanout import Change
from autocloud.services.positions import PositionCursor, PositionFeed
from tests.api.conftest import NOW, SOC, SPEED, Env, na_vin, state
from tests.api.test_owner_scope import Owner

LAT = "Vehicle.CurrentLocation.Latitude"
LON = "Vehicle.CurrentLocation.Longitude"
HEADING = "Vehicle.CurrentLocation.Heading"
CHARGING = "Vehicle.Powertrain.TractionBattery.Charging.IsCharging"


def _twin(vin: str, brand: str, **values: Any) -> Change:
    paths = {"lat": LAT, "lon": LON, "speed": SPEED, "heading": HEADING, "charging": CHARGING}
    signals = {paths[k]: {"value": v, "ts": NOW} for k, v in values.items()}
    return Change("twin", vin, brand, {"signals": signals})


# --- the compact form ------------------------------------------------------------------------


def test_signals_are_rounded_to_what_a_map_shows() -> None:
    got = fields_of_signals(
        {
            LAT: {"value": 48.1234567, "ts": 1},
            LON: {"value": 11.9876543, "ts": 1},
            HEADING: {"value": 271.6, "ts": 1},
            SPEED: {"value": 42.26, "ts": 1},
            CHARGING: {"value": True, "ts": 1},
            "Vehicle.TraveledDistance": {"value": 12.0, "ts": 1},  # not a map field
        }
    )
    assert got == {"lat": 48.12346, "lon": 11.98765, "heading": 272, "speed": 42.3, "charging": 1}
    assert compact(SOC, "full") == ("soc", None)  # not a number: unknown, never a made-up one
    assert compact("Vehicle.Cabin.IsLocked", True) is None


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_cursor_takes_the_changes_of_its_interval_for_its_tenant_only() -> None:
    feed, clock = PositionFeed(), Clock()
    feed.follow()  # another map is open already
    a1, a2, b1 = na_vin(1), na_vin(2), na_vin(3)
    feed.fold([_twin(a1, "alpha", lat=1.0, lon=2.0, speed=10.0)])  # before the cursor
    alpha = PositionCursor(feed, change_filter("alpha", None), 1.0, clock)
    feed.fold([_twin(a1, "alpha", speed=20.0), _twin(b1, "beta", lat=5.0, lon=6.0)])
    assert alpha.take(NOW) is None  # not due yet
    clock.now += 1.0
    body = json.loads(alpha.take(NOW) or "null")
    # Only a1: b1 is beta's; a1's row has its latest known values, the older ones included.
    assert body["vin"] == [a1] and body["n"] == 1 and body["t"] == NOW
    assert (body["lat"], body["lon"], body["speed"], body["online"]) == ([1.0], [2.0], [20.0], [1])
    assert set(body) == {"t", "n", "vin", *LIVE_FIELDS}
    clock.now += 1.0
    feed.fold([_twin(b1, "beta", speed=3.0)])
    assert alpha.take(NOW) is None  # beta moved, alpha did not: nothing to send
    feed.fold([Change("presence", a2, "alpha", {"online": False}), _twin(a1, "alpha", lat=1.5)])
    clock.now += 1.0
    body = json.loads(alpha.take(NOW) or "null")
    assert body["vin"] == [a2, a1]  # oldest change first
    assert body["online"] == [0, 1] and body["lat"] == [None, 1.5]


def test_an_owner_cursor_follows_the_owner_s_vehicles() -> None:
    feed, clock = PositionFeed(), Clock()
    mine, theirs = na_vin(1), na_vin(2)
    owned = [frozenset({mine})]
    cursor = PositionCursor(feed, change_filter("alpha", None, lambda: owned[0]), 1.0, clock)
    feed.fold([_twin(mine, "alpha", speed=1.0), _twin(theirs, "alpha", speed=2.0)])
    clock.now += 1.0
    assert json.loads(cursor.take(NOW) or "null")["vin"] == [mine]
    owned[0] = frozenset()  # detached from the owner
    feed.fold([_twin(mine, "alpha", speed=3.0)])
    clock.now += 1.0
    assert cursor.take(NOW) is None


def test_the_feed_folds_only_while_a_cursor_follows_it() -> None:
    feed, clock = PositionFeed(), Clock()
    a1 = na_vin(1)
    feed.fold([_twin(a1, "alpha", lat=1.0, lon=2.0)])  # nobody follows: not kept
    assert feed.since(0)[1] == []
    first = PositionCursor(feed, change_filter("alpha", None), 1.0, clock)
    feed.fold([_twin(a1, "alpha", speed=20.0)])
    clock.now += 1.0
    body = json.loads(first.take(NOW) or "null")
    # The position came while nobody followed: "no news", the map keeps its snapshot's.
    assert (body["lat"], body["lon"], body["speed"]) == ([None], [None], [20.0])
    first.close()
    first.close()  # closing twice is harmless
    feed.fold([_twin(a1, "alpha", lat=3.0)])
    assert [r.values for r in feed.since(0)[1]] == [body_values(body)]  # not folded
    again = PositionCursor(feed, change_filter("alpha", None), 1.0, clock)
    assert feed.since(0)[1] == []  # rows that missed changes are dropped for the new one
    feed.fold([_twin(a1, "alpha", lon=4.0)])
    clock.now += 1.0
    body = json.loads(again.take(NOW) or "null")
    assert (body["lat"], body["lon"], body["speed"]) == ([None], [4.0], [None])
    again.close()


def body_values(body: dict[str, list[object]]) -> tuple[object, ...]:
    return tuple(body[field][0] for field in LIVE_FIELDS)


# --- the snapshot ----------------------------------------------------------------------------


def _drive(env: Env) -> None:
    """Both tenants' cars report a position; beta's is charging and goes offline."""
    env.ingest(state(env.alpha.vin, True, NOW - 60_000))
    env.send(env.alpha.vin, NOW - 50_000, {LAT: 48.1234567, LON: 11.5, SPEED: 33.33, SOC: 71.0})
    env.ingest(state(env.beta.vin, True, NOW - 60_000))
    env.send(env.beta.vin, NOW - 40_000, {LAT: 52.5, LON: 13.4, SPEED: 0.0, CHARGING: True})
    env.ingest(state(env.beta.vin, False, NOW - 30_000))


def test_snapshot_has_every_vehicle_of_the_tenant_in_columns(env: Env) -> None:
    _drive(env)
    alpha = env.client.get("/v1/fleet/positions", headers=env.alpha.h("viewer"))
    assert alpha.status_code == 200, alpha.text
    body = alpha.json()
    assert body["t"] == NOW and body["n"] == 1
    assert body["vin"] == [env.alpha.vin] and body["brand"] == ["alpha"]
    assert body["model"] == [env.alpha.model]
    assert (body["lat"], body["lon"], body["speed"], body["soc"]) == (
        [48.12346],
        [11.5],
        [33.3],
        [71.0],
    )
    assert (body["online"], body["charging"], body["heading"]) == ([1], [None], [None])
    assert env.beta.vin not in alpha.text and "Bison" not in alpha.text
    group = env.client.get("/v1/fleet/positions", headers=env.g).json()
    assert group["vin"] == [env.alpha.vin, env.beta.vin]
    assert group["online"] == [1, 0] and group["charging"] == [None, 1]
    chosen = env.client.get("/v1/fleet/positions", params={"brand": "beta"}, headers=env.g)
    assert chosen.json()["vin"] == [env.beta.vin]


def test_snapshot_of_a_foreign_brand_is_not_found(env: Env) -> None:
    r = env.client.get(
        "/v1/fleet/positions", params={"brand": "beta"}, headers=env.alpha.h("admin")
    )
    assert r.status_code == 404
    assert r.headers["content-type"] == "application/problem+json"


def test_snapshot_is_gzipped_for_clients_that_accept_it(env: Env) -> None:
    for serial in range(10, 60):  # enough vehicles for compression to be worth it
        env.platform.registry.add_vehicle(SYSTEM, na_vin(serial), "alpha")
    url = f"{env.client.base_url}/v1/fleet/positions"
    with env.client.stream("GET", url, headers={**env.g, "Accept-Encoding": "gzip"}) as r:
        raw = b"".join(r.iter_raw())
    assert r.headers["content-encoding"] == "gzip"
    assert json.loads(gzip.decompress(raw))["n"] == 52
    plain = env.client.get(url, headers={**env.g, "Accept-Encoding": "identity"})
    assert "content-encoding" not in plain.headers and plain.json()["n"] == 52


def test_an_owner_s_snapshot_has_only_the_owner_s_vehicles(env: Env) -> None:
    _drive(env)
    olga = Owner(env)  # in brand beta, like Bertram's car
    env.send(olga.vin, NOW - 20_000, {LAT: 50.0, LON: 8.0})
    r = env.client.get("/v1/fleet/positions", headers=olga.h)
    assert r.status_code == 200, r.text
    assert r.json()["vin"] == [olga.vin]
    assert env.beta.vin not in r.text


# --- the live stream -------------------------------------------------------------------------


def _events(lines: Iterator[str]) -> Iterator[tuple[str, dict[str, Any]]]:
    name = ""
    for line in lines:
        if line.startswith("event:"):
            name = line.removeprefix("event:").strip()
        elif line.startswith("data:"):
            yield name, json.loads(line.removeprefix("data:"))


def _positions_until(lines: Iterator[str], vin: str) -> list[tuple[str, dict[str, Any]]]:
    """Every event up to and including the first positions event naming `vin`."""
    seen = []
    for name, data in _events(lines):
        seen.append((name, data))
        if name == "positions" and vin in data["vin"]:
            return seen
    raise AssertionError("the stream ended")


@pytest.mark.timeout(30)
def test_stream_positions_carry_only_own_tenant_vehicles(env: Env) -> None:
    """Over HTTP, fed by real ingest: a wrong-tenant token gets nothing foreign."""
    params = {"kinds": "positions", "interval": "0.2"}
    with env.client.stream("GET", "/v1/stream", params=params, headers=env.alpha.h("viewer")) as r:
        assert r.status_code == 200
        lines = r.iter_lines()
        assert next(_events(lines)) == ("ready", {})
        env.send(env.beta.vin, NOW - 5_000, {LAT: 52.5, LON: 13.4, SPEED: 11.0})
        env.ingest(state(env.beta.vin, False, NOW - 4_500))
        env.send(env.alpha.vin, NOW - 4_000, {LAT: 48.1, LON: 11.5, SPEED: 22.0})
        got = _positions_until(lines, env.alpha.vin)
    assert {name for name, _ in got} == {"positions"}  # kinds=positions: no twin events
    assert env.beta.vin not in json.dumps(got)
    last = got[-1][1]
    assert last["vin"] == [env.alpha.vin] and last["speed"] == [22.0] and last["online"] == [1]


@pytest.mark.timeout(30)
def test_stream_positions_of_an_owner_carry_only_the_owner_s_car(env: Env) -> None:
    olga = Owner(env)
    params = {"kinds": "positions,presence", "interval": "0.2"}
    with env.client.stream("GET", "/v1/stream", params=params, headers=olga.h) as r:
        assert r.status_code == 200
        lines = r.iter_lines()
        assert next(_events(lines)) == ("ready", {})
        env.send(env.beta.vin, NOW - 5_000, {LAT: 52.5, LON: 13.4, SPEED: 11.0})
        env.ingest(state(env.beta.vin, True, NOW - 4_500))  # Bertram's presence: not hers
        env.ingest(state(olga.vin, True, NOW - 4_200))
        env.send(olga.vin, NOW - 4_000, {LAT: 50.0, LON: 8.0, SPEED: 7.0})
        got = _positions_until(lines, olga.vin)
    assert env.beta.vin not in json.dumps(got)
    assert ("presence", {"vin": olga.vin, "brand": "beta", "online": True}) in got
    assert {name for name, _ in got} <= {"presence", "positions"}


def test_stream_positions_refuse_a_foreign_brand_like_the_stream(env: Env) -> None:
    for params in ({"brand": "beta"}, {"vin": env.beta.vin}):
        r = env.client.get(
            "/v1/stream", params={**params, "kinds": "positions"}, headers=env.alpha.h("viewer")
        )
        assert r.status_code == 404, r.text
        assert env.beta.vin not in r.text


def test_interval_out_of_range_is_refused_in_words(env: Env) -> None:
    r = env.client.get("/v1/stream", params={"kinds": "positions", "interval": "0"}, headers=env.g)
    assert r.status_code == 422
    assert "interval" in r.text


@pytest.mark.timeout(30)
def test_stream_is_gzipped_for_clients_that_accept_it(env: Env) -> None:
    gz = {**env.g, "Accept-Encoding": "gzip"}
    with env.client.stream("GET", "/v1/stream", headers=gz) as r:
        assert r.headers["content-encoding"] == "gzip"
        first = next(r.iter_raw())  # each event is flushed whole: it decodes on its own
    assert zlib.decompressobj(31).decompress(first) == b"event: ready\r\ndata: {}\r\n\r\n"
    plain = {**env.g, "Accept-Encoding": "identity"}
    with env.client.stream("GET", "/v1/stream", headers=plain) as r:
        assert "content-encoding" not in r.headers
        assert next(r.iter_raw()).startswith(b"event: ready")


def test_accept_encoding_is_read_as_written() -> None:
    def asks(value: str) -> bool:
        scope = {"type": "http", "headers": [(b"accept-encoding", value.encode())]}
        return accepts_gzip(Request(scope))

    assert asks("gzip, deflate, br") and asks("br;q=1.0, GZIP;q=0.5")
    assert not asks("identity") and not asks("gzip;q=0") and not asks("x-gzip2")
