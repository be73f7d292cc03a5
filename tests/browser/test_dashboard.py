"""The operator dashboard in Debian's Chromium against a live platform and simulated fleet."""

from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from autocloud.bootstrap import SYSTEM
from tests.browser.conftest import FLEET_SIZE, Dashboard, screenshot, sign_in
from tests.support.vehicle import WAIT_S

pytestmark = pytest.mark.slow

# Markers drawn on the map: single vehicles plus the vehicles inside each cluster.
RENDERED = """() => {
  const map = window.autocloud.map;
  if (!map || !map.getLayer("vehicles")) return -1;
  const seen = new Map();
  for (const f of map.queryRenderedFeatures({ layers: ["vehicles", "clusters"] })) {
    const p = f.properties;
    seen.set(p.cluster_id !== undefined ? "c" + p.cluster_id : p.vin, p.point_count || 1);
  }
  return [...seen.values()].reduce((a, b) => a + b, 0);
}"""
POSITIONS = """() => Object.fromEntries([...window.autocloud.fleet.vehicles.values()]
  .map((v) => [v.vin, [v.lat, v.lon]]))"""


def test_sign_in_shows_every_vehicle_on_the_map_and_they_move(
    page: Any, dashboard: Dashboard
) -> None:
    sign_in(page, dashboard, dashboard.admin_token)
    page.wait_for_function(f"({RENDERED})() === {FLEET_SIZE}", timeout=30_000)
    assert page.get_by_text(f"{FLEET_SIZE} of {FLEET_SIZE} vehicles shown").is_visible()
    assert page.locator(".vehicle-list a[data-vin]").count() == FLEET_SIZE
    before = page.evaluate(POSITIONS)
    batches = page.evaluate("window.autocloud.layer.stats.batches")
    # Live updates from the stream, without a reload: some car's position changes, and the
    # map's vehicle source is rebuilt with it.
    page.wait_for_function(
        f"""(before) => {{
          const now = ({POSITIONS})();
          const moved = (vin) => JSON.stringify(now[vin]) !== JSON.stringify(before[vin]);
          return Object.keys(now).some(moved) && window.autocloud.layer.stats.batches > {batches};
        }}""",
        arg=before,
        timeout=90_000,
    )
    assert page.evaluate(f"({RENDERED})()") == FLEET_SIZE
    screenshot(page, "map")
    assert page.errors == []


def test_search_and_state_filter_narrow_the_list(page: Any, dashboard: Dashboard) -> None:
    sign_in(page, dashboard, dashboard.admin_token)
    vin = dashboard.fleet.vehicles[3].vin
    page.get_by_label("Search by VIN").fill(vin[-6:])
    page.wait_for_selector(f".vehicle-list a[data-vin='{vin}']")
    assert page.locator(".vehicle-list a[data-vin]").count() == 1
    page.wait_for_function(f"({RENDERED})() === 1", timeout=15_000)


def test_vehicle_page_shows_identity_twin_history_and_track(
    page: Any, dashboard: Dashboard
) -> None:
    sign_in(page, dashboard, dashboard.admin_token)
    first = page.locator(".vehicle-list a[data-vin]").first
    vin = first.get_attribute("data-vin")
    first.focus()
    page.keyboard.press("Enter")  # keyboard reachable: the list is made of links
    page.wait_for_selector("#vin")
    assert page.locator("#vin").inner_text() == vin
    vehicle = dashboard.platform.registry.vehicle(SYSTEM, vin)
    assert page.get_by_text(str(vehicle.model_year)).first.is_visible()
    page.wait_for_selector("table.signals tr[data-path='Vehicle.Speed']")
    assert page.locator("table.signals td", has_text="km/h").count() >= 1  # units shown
    page.wait_for_selector(".chart canvas")  # the history chart
    page.wait_for_function(
        "window.autocloud.trackMap && window.autocloud.trackMap.getSource('here')", timeout=30_000
    )
    page.wait_for_selector("#online-state.online")
    screenshot(page, "vehicle")
    assert page.errors == []


def test_a_brand_token_sees_no_foreign_vehicle(page: Any, dashboard: Dashboard) -> None:
    brand = dashboard.fleet.vehicles[0].brand
    mine = {v.vin for v in dashboard.fleet.vehicles if v.brand == brand}
    foreign = [v.vin for v in dashboard.fleet.vehicles if v.brand != brand]
    assert mine and foreign
    sign_in(page, dashboard, dashboard.token(brand))
    page.wait_for_function(f"({RENDERED})() === {len(mine)}", timeout=30_000)
    listed = set(
        page.eval_on_selector_all(".vehicle-list a[data-vin]", "l => l.map(a => a.dataset.vin)")
    )
    assert listed == mine
    assert set(page.evaluate(POSITIONS)) == mine
    assert page.locator("#brand-filter-label").is_hidden()  # no brand choice for a brand
    page.goto(f"{dashboard.url}#/vehicle/{foreign[0]}")
    page.get_by_text(f"No vehicle {foreign[0]} in your fleet.").wait_for()


def test_an_unknown_token_is_refused_in_words(page: Any, dashboard: Dashboard) -> None:
    page.goto(dashboard.url)
    page.get_by_label("API token").fill("ac_not-a-real-token")
    page.get_by_role("button", name="Sign in").click()
    page.get_by_text("This token was not accepted").wait_for()
    assert page.locator("#topbar").is_hidden()


def test_dead_letters_page_shows_a_bad_message_safely(page: Any, dashboard: Dashboard) -> None:
    # A vehicle of its own (the fleet's cars keep their logins), sending broken JSON.
    vin = "WVWZZZ1JZXW999001"
    brand = dashboard.fleet.vehicles[0].brand
    secret = dashboard.platform.registry.add_vehicle(SYSTEM, vin, brand, "Probe").secret
    bad = b'{"v":1,"sid":"x","seq":<img src=x onerror="window.pwned=1">'
    host, port = dashboard.platform.settings.mqtt_host_port
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=vin)
    client.username_pw_set(vin, secret)
    client.connect(host, port)
    client.loop_start()
    try:
        client.publish(f"vehicles/{vin}/telemetry", bad, qos=1).wait_for_publish(WAIT_S)
    finally:
        client.disconnect()
        client.loop_stop()
        dashboard.platform.registry.remove_vehicle(SYSTEM, vin)  # its dead letter stays
    sign_in(page, dashboard, dashboard.admin_token)
    page.goto(f"{dashboard.url}#/dead-letters")
    page.get_by_label("VIN").fill(vin)
    page.get_by_label("VIN").press("Enter")
    payload = page.locator("pre.payload", has_text="onerror")
    payload.first.wait_for(timeout=30_000)
    assert payload.first.inner_text() == bad.decode()  # shown as text, byte for byte
    assert page.locator("table.dead-letters img").count() == 0
    assert page.evaluate("window.pwned") is None
    assert page.locator(".reasons button", has_text="malformed").count() == 1
    screenshot(page, "dead-letters")


def test_overview_plots_soc_distribution_and_pulse(page: Any, dashboard: Dashboard) -> None:
    sign_in(page, dashboard, dashboard.admin_token)
    page.goto(f"{dashboard.url}#/overview")
    page.wait_for_selector("#chart-soc canvas")
    page.wait_for_selector("#chart-online canvas")
    page.get_by_text(f"{FLEET_SIZE} vehicles", exact=True).wait_for()
    assert page.errors == []


LOCKED = "Vehicle.Cabin.Door.Row1.DriverSide.IsLocked"


def test_lock_goes_through_to_succeeded_and_the_twin_follows(
    page: Any, dashboard: Dashboard
) -> None:
    # A parked car (locking needs no interlock, unlocking refuses a moving one).
    parked = [
        e.vehicle.vin
        for e in dashboard.platform.telemetry.fleet(
            SYSTEM,
            brand=None,
            model=None,
            online=True,
            where=["Vehicle.Speed=0"],
            cursor=None,
            limit=1000,
        ).items
    ]
    assert parked, "no parked car in the fleet"
    vin = parked[0]
    sign_in(page, dashboard, dashboard.admin_token)
    page.goto(f"{dashboard.url}#/vehicle/{vin}")
    row = page.locator(f"table.signals tr[data-path='{LOCKED}'] td.num")
    for command, shown in (("unlock", "no"), ("lock", "yes")):
        page.locator(f"button[data-command='{command}']").click()
        done = page.locator(".lifecycle li[data-state='succeeded']", has_text=command)
        done.first.wait_for(timeout=30_000)
        page.wait_for_function(
            "([sel, want]) => document.querySelector(sel)?.textContent === want",
            arg=[f"table.signals tr[data-path='{LOCKED}'] td.num", shown],
            timeout=30_000,
        )
        assert row.inner_text() == shown
    screenshot(page, "vehicle-commands")
    assert page.errors == []


def test_an_alert_appears_and_is_acknowledged(page: Any, dashboard: Dashboard) -> None:
    brand = dashboard.fleet.vehicles[0].brand
    sign_in(page, dashboard, dashboard.admin_token)
    page.goto(f"{dashboard.url}#/alerts")
    # The rule editor: every moving or parked car of the brand reports a speed >= 0.
    page.locator("#rule-name").fill("browser speed probe")
    page.locator("#rule-brand").select_option(brand)
    page.locator("#rule-path").fill("Vehicle.Speed")
    page.locator("#rule-op").select_option(">=")
    page.locator("#rule-threshold").fill("0")
    page.get_by_role("button", name="Add rule").click()
    page.locator("tr[data-rule-id]", has_text="browser speed probe").wait_for()
    row = page.locator("tr[data-alert-id][data-state='open']", has_text="browser speed probe")
    row.first.wait_for(timeout=60_000)
    alert_id = row.first.get_attribute("data-alert-id")
    row.first.get_by_role("button", name="Acknowledge").click()
    page.locator(f"tr[data-alert-id='{alert_id}']").wait_for(state="detached")
    page.get_by_role("button", name="acknowledged").click()
    page.locator(f"tr[data-alert-id='{alert_id}'][data-state='acknowledged']").wait_for()
    screenshot(page, "alerts")
    page.get_by_role("button", name="Delete rule browser speed probe").click()
    page.locator("tr[data-rule-id]", has_text="browser speed probe").wait_for(state="detached")
    assert page.errors == []
