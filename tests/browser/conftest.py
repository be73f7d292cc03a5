"""A real platform with a small simulated fleet, served over HTTP, and Debian's Chromium.

The platform is the embedded tier (amqtt in-process, SQLite) started in this process with
`map_path` set to a generated town, its API served by uvicorn on a free port; twenty
simulated cars of three brands drive the town in real time (the demo's fleet, smaller).
Playwright drives /usr/bin/chromium (`apt-get install chromium`; never a downloaded browser);
without it, or without the built dashboard (`make web`), the tests skip, and fail in CI.
Screenshots go to artifacts/screenshots/.
"""

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import uvicorn

from autocloud.bootstrap import SYSTEM, Platform, build
from autocloud.domain.access import Role
from autocloud.entrypoints.api import routes_dashboard
from autocloud.entrypoints.api.app import create_app
from autocloud.entrypoints.cli.demo import InProcessProvisioner
from autocloud.settings import load_settings
from autocloud.sim.fleet import Fleet, FleetConfig
from autocloud.sim.places import Places
from autocloud.sim.roads import Router, build_graph
from autocloud.sim.town import generate_town
from tests.conftest import REPO, free_port, need
from tests.support.vehicle import eventually

pytestmark = pytest.mark.slow
CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOTS = REPO / "artifacts" / "screenshots"
FLEET_SIZE = 20
# Headless Chromium has no GPU here: WebGL (MapLibre) runs on SwiftShader.
CHROMIUM_ARGS = ["--use-angle=swiftshader", "--enable-unsafe-swiftshader", "--ignore-gpu-blocklist"]


@dataclass
class Dashboard:
    platform: Platform
    fleet: Fleet
    url: str
    admin_token: str

    def token(self, brand: str | None, role: Role = Role.OPERATOR) -> str:
        _, token = self.platform.registry.issue_token(f"browser-{brand}", role, brand)
        return token


@pytest.fixture(scope="session")
def dashboard(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dashboard]:
    need(CHROMIUM.exists(), "Debian's Chromium at /usr/bin/chromium (apt-get install chromium)")
    need(
        (routes_dashboard.dist_dir() / "index.html").is_file(),
        "the built dashboard in web/dist (make web)",
    )
    data = tmp_path_factory.mktemp("dashboard")
    town = generate_town(data / "town.osm", seed=7)
    api_port = free_port()
    settings = load_settings(
        data_dir=data, embedded_broker_port=free_port(), api_port=api_port, map_path=town
    )
    platform = build(settings)
    token = platform.ensure_admin_token()
    assert token is not None
    platform.start()
    server = uvicorn.Server(
        uvicorn.Config(create_app(platform), host="127.0.0.1", port=api_port, log_level="warning")
    )
    serving = threading.Thread(target=server.run, daemon=True)
    serving.start()
    eventually(lambda: server.started, timeout=20)

    router = Router(build_graph(town, data / "osrm"))
    fleet = Fleet(
        FleetConfig(vehicles=FLEET_SIZE, seed=11),
        router,
        Places(town),
        InProcessProvisioner(platform),
    )
    fleet.provision()
    host, port = settings.mqtt_host_port
    fleet.connect(host, port)
    stop = threading.Event()
    driving = threading.Thread(target=fleet.run, kwargs={"should_stop": stop.is_set}, daemon=True)
    driving.start()
    # Every car has reported a position before the browser looks.
    eventually(lambda: _positions(platform) == FLEET_SIZE, timeout=60)
    yield Dashboard(platform, fleet, f"http://127.0.0.1:{api_port}/dashboard/", token)
    stop.set()
    driving.join(timeout=10)
    fleet.close()
    server.should_exit = True
    serving.join(timeout=10)
    platform.stop()


def _positions(platform: Platform) -> int:
    page = platform.telemetry.fleet(
        SYSTEM, brand=None, model=None, online=None, where=[], cursor=None, limit=1000
    )
    return sum(1 for e in page.items if "Vehicle.CurrentLocation.Latitude" in e.signals)


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    need(CHROMIUM.exists(), "Debian's Chromium at /usr/bin/chromium (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        launched = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    """A fresh tab at laptop size (1366 x 768); its console errors are kept for the report."""
    context = browser.new_context(viewport={"width": 1366, "height": 768})
    tab = context.new_page()
    tab.errors = []
    tab.on("pageerror", lambda e: tab.errors.append(str(e)))
    yield tab
    context.close()


def sign_in(page: Any, dashboard: Dashboard, token: str) -> None:
    page.goto(dashboard.url)
    page.get_by_label("API token").fill(token)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_function("window.autocloud && window.autocloud.ready", timeout=30_000)


def screenshot(page: Any, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path))
    return path


def settle(seconds: float) -> None:
    """Let the live page receive a few stream updates (not an assertion on speed)."""
    time.sleep(seconds)
