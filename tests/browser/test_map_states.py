"""Every state the fleet map shows, driven through the platform's real ingest and live feed.

A probe car of its own (the simulated cars drive as they like) reports through the ingest
pipeline; the map follows it from the stream's `positions` events (and `presence`, `dtc`,
`alert`): moving, parked, charging, offline, alert open, critical DTC. Its vehicle page
gets its full twin changes on a connection of its own.
"""

import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from autocloud.bootstrap import SYSTEM
from autocloud.ports.link import Inbound
from tests.browser.conftest import Dashboard, screenshot, sign_in

pytestmark = pytest.mark.slow

LAT, LON = "Vehicle.CurrentLocation.Latitude", "Vehicle.CurrentLocation.Longitude"
SPEED = "Vehicle.Speed"
CHARGING = "Vehicle.Powertrain.TractionBattery.Charging.IsCharging"
PROBE_VINS = iter(f"WVWZZZ1JZXW99901{n}" for n in range(10))  # a fresh car for each test
STATE_OF = """([vin, id, label]) => {
  const dot = document.querySelector(`.vehicle-list a[data-vin='${vin}'] .dot`);
  const feature = window.autocloud.layer && window.autocloud.layer.features.get(vin);
  // `features.get` answers null for a car the layer has not drawn yet: keep waiting.
  return dot !== null && dot.title === label && feature != null
    && feature.properties.state === id;
}"""


class Probe:
    """A registered car that reports only what the test makes it report."""

    def __init__(self, dashboard: Dashboard) -> None:
        self.platform = dashboard.platform
        self.brand = dashboard.fleet.vehicles[0].brand
        self.vin = next(PROBE_VINS)
        self.platform.registry.add_vehicle(SYSTEM, self.vin, self.brand, "Probe")
        self.seq = 0
        self.sid = f"probe-{time.time_ns()}"  # a new session each time (seq starts at 1)
        # Somewhere in the town: where one of the simulated cars is.
        page = self.platform.telemetry.fleet(
            SYSTEM, brand=None, model=None, online=None, where=[], cursor=None, limit=1
        )
        signals = page.items[0].signals
        self.at = (signals[LAT], signals[LON])

    def _send(self, subtopic: str, body: dict[str, Any]) -> None:
        now = int(time.time() * 1000)
        payload = json.dumps({"v": 1, "sid": self.sid, "ts": now, **body}).encode()
        batch = self.platform.ingest.handle(
            [Inbound(f"vehicles/{self.vin}/{subtopic}", payload, received_ms=now)]
        )
        assert batch.out.dead_letters == [], batch.out.dead_letters

    def report(self, signals: dict[str, Any]) -> None:
        self.seq += 1
        self._send("telemetry", {"seq": self.seq, "signals": signals})

    def event(self, kind: str, data: dict[str, Any]) -> None:
        self.seq += 1
        self._send("events", {"seq": self.seq, "type": kind, "data": data})

    def presence(self, online: bool) -> None:
        self._send("state", {"online": online})


@pytest.fixture
def probe(dashboard: Dashboard) -> Iterator[Probe]:
    made = Probe(dashboard)
    made.presence(True)
    made.report({LAT: made.at[0], LON: made.at[1], SPEED: 30.0, CHARGING: False})
    yield made
    dashboard.platform.registry.remove_vehicle(SYSTEM, made.vin)


def _shows(page: Any, probe: Probe, state: str, label: str) -> None:
    page.wait_for_function(STATE_OF, arg=[probe.vin, state, label], timeout=30_000)


def test_the_map_follows_every_state_from_the_live_feed(
    page: Any, dashboard: Dashboard, probe: Probe
) -> None:
    sign_in(page, dashboard, dashboard.admin_token)
    page.get_by_label("Search by VIN").fill(probe.vin)
    _shows(page, probe, "moving", "Moving")
    probe.report({SPEED: 0.0})
    _shows(page, probe, "parked", "Parked")
    probe.report({CHARGING: True})
    _shows(page, probe, "charging", "Charging")
    probe.presence(False)
    _shows(page, probe, "offline", "Offline")
    probe.report({CHARGING: False})  # it reports again: online, parked
    _shows(page, probe, "parked", "Parked")
    # An alert rule on an event only the probe sends; the alert opens, then resolves.
    api = httpx.Client(
        base_url=dashboard.url.removesuffix("/dashboard/"),
        headers={"Authorization": f"Bearer {dashboard.admin_token}"},
    )
    rule = {"name": "alarm.browser_probe", "brand": probe.brand}
    rule["event"] = {"type": "alarm.browser_probe", "clear_type": "alarm.browser_probe_cleared"}
    made = api.post("/v1/alert-rules", json=rule)
    assert made.status_code == 201, made.text
    try:
        probe.event("alarm.browser_probe", {})
        _shows(page, probe, "alert", "Alert open")
        probe.event("alarm.browser_probe_cleared", {})
        _shows(page, probe, "parked", "Parked")
    finally:
        api.delete(f"/v1/alert-rules/{made.json()['id']}")
    probe.event("dtc.raised", {"code": "C0035"})  # brakes: critical
    _shows(page, probe, "critical", "Critical DTC")
    screenshot(page, "map-states")
    # The map's connection carries one positions event a second, never per-vehicle twins.
    counters = page.evaluate("window.autocloud.counters")
    assert counters["positions"] > 0
    assert page.errors == []


def test_the_vehicle_page_follows_its_twin_on_its_own_connection(
    page: Any, dashboard: Dashboard, probe: Probe
) -> None:
    sign_in(page, dashboard, dashboard.admin_token)
    page.goto(f"{dashboard.url}#/vehicle/{probe.vin}")
    cell = f"table.signals tr[data-path='{SPEED}'] td.num"
    page.wait_for_selector(cell)
    shown = "(sel) => document.querySelector(sel)?.textContent === '42.5'"
    for _ in range(15):  # until the page's own connection is up and carries the report
        probe.report({SPEED: 42.5})
        try:
            page.wait_for_function(shown, arg=cell, timeout=2_000)
            break
        except PlaywrightTimeout:
            probe.report({SPEED: 0.0})
    else:
        raise AssertionError("the vehicle page never showed the reported speed")
    assert page.errors == []
