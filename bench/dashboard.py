"""Dashboard benchmark: the fleet map with N vehicles in headless Chromium.

    .venv/bin/python bench/dashboard.py --vehicles 10000 --seconds 15

What it feeds: the platform's own HTTP routes for everything the map reads, over a
**synthetic** fleet (10,000 provisioned vehicles driving would measure the simulator and
ingest, which have their own benchmarks):

* the real built dashboard (web/dist) and the real road GeoJSON of a generated 4 km town
  (routes_dashboard);
* the real snapshot route `/v1/fleet/positions` (routes_dashboard), whose reader returns
  the synthetic cars instead of reading SQL;
* the real live stream `/v1/stream` (routes_stream) with the real hub and positions feed
  (services/fanout.py, services/positions.py): once per second every car publishes a `twin`
  change shaped like the platform's (the ten signals a moving electric car reports each
  second: position, speed, heading, SoC, energy, ranges, power, odometer), in batches of
  500 as ingest commits them. The dashboard asks for `kinds=positions,…`, so it gets one
  `positions` event per second, exactly as from a real platform;
* stand-ins only for `/v1/brands` (three brands) and `/openapi.json` (no feature routes).

Measured in the page (Chromium's clock):
* first render: from pressing "Sign in" until the base map is fitted to the town with its
  roads drawn and every vehicle is drawn (the rendered markers, clusters counted by their
  size, add up to N), with the page's own marks (`ac:*`) on the way;
* per 1 Hz batch: the main-thread time of the dashboard's own work on one `positions`
  event: JSON.parse, applying it to the fleet store, rebuilding the map source (GeoJSON
  features and `setData`), and redrawing the side panel's counts and list (once a second);
* smoothness while updates stream in: the main thread's long tasks (Long Tasks API, tasks
  over 50 ms; MapLibre's own tile and render work included) per second, and the intervals
  between animation frames;
* bandwidth: bytes of the stream per second per connected browser (counted on the server,
  as sent: gzipped, since Chromium accepts gzip), and, for comparison, what the same fleet
  costs on the per-vehicle `twin` stream, plain and gzipped (a plain HTTP client reads it
  for a few seconds after the browser is done).

`--warm` signs in a second time in the same browser (a returning operator: Chromium's
shader and HTTP caches are warm) and reports that first render too.
"""

import argparse
import gzip
import json
import math
import os
import random
import statistics
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable, MutableMapping
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from fastapi import FastAPI

from autocloud.adapters import osm_map
from autocloud.domain.access import Principal, Role
from autocloud.domain.clock import SystemClock
from autocloud.domain.positions import Position, fields_of_signals
from autocloud.entrypoints.api import deps, routes_dashboard, routes_stream
from autocloud.services.fanout import Change, Hub
from autocloud.services.mapdata import MapData
from autocloud.services.positions import PositionFeed, PositionsService
from autocloud.settings import Settings
from autocloud.sim.town import generate_town

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--use-angle=swiftshader", "--enable-unsafe-swiftshader"]
TOKEN = "ac_bench"
BRANDS = [("volkswagen", "Volkswagen"), ("skoda", "Škoda"), ("bmw", "BMW")]
MODELS = ["ID.3", "Enyaq", "i4", "Golf", "Octavia", "330e"]
P = "Vehicle."
PUBLISH_BATCH = 500  # changes per hub.publish, like one ingest commit


class SyntheticFleet:
    """N cars moving on circles around the town; positions advance once per second."""

    def __init__(self, n: int, bbox: list[float]) -> None:
        rng = random.Random(1)
        west, south, east, north = bbox
        self.cars: list[dict[str, Any]] = [
            {
                "vin": f"WVWZZZ1K{i:09d}",
                "brand": BRANDS[i % 3][0],
                "model": MODELS[i % len(MODELS)],
                "lat0": rng.uniform(south, north),
                "lon0": rng.uniform(west, east),
                "phase": rng.uniform(0, 2 * math.pi),
                # Each car its own battery, odometer and consumption: a real fleet's values
                # differ from car to car (identical ones would flatter gzip).
                "soc": rng.uniform(15, 95),
                "odometer": rng.randint(1_000_000, 150_000_000),
                "kwh_per_km": rng.uniform(0.14, 0.22),
            }
            for i in range(n)
        ]
        self.tick = 0

    def position(self, car: dict[str, Any]) -> tuple[float, float]:
        angle = car["phase"] + self.tick * 0.02
        return car["lat0"] + 0.0008 * math.sin(angle), car["lon0"] + 0.0012 * math.cos(angle)

    def signals(self, i: int, car: dict[str, Any], ts: int) -> dict[str, Any]:
        lat, lon = self.position(car)
        speed = 30 + (i * 7 + self.tick) % 30
        soc = round(car["soc"] - self.tick * 0.002, 2)
        energy = round(soc * 0.58, 2)  # kWh of a 58 kWh battery
        range_m = round(energy / car["kwh_per_km"] * 1000)
        values = {
            "TraveledDistance": car["odometer"] + self.tick * 12,
            "Powertrain.TractionBattery.StateOfCharge.Current": soc,
            "Powertrain.TractionBattery.StateOfCharge.CurrentEnergy": energy,
            "Powertrain.TractionBattery.Range": range_m,
            "Powertrain.TractionBattery.CurrentPower": round(-speed * car["kwh_per_km"] * 1000, 1),
            "Powertrain.Range": range_m,
            "Speed": speed,
            "CurrentLocation.Heading": round(
                (math.degrees(car["phase"]) + self.tick * 1.15) % 360, 1
            ),
            "CurrentLocation.Latitude": lat,
            "CurrentLocation.Longitude": lon,
        }
        return {P + k: {"value": v, "ts": ts} for k, v in values.items()}

    def positions(self, scope: str | None, vins: Any) -> list[Position]:
        """The snapshot reader's answer: every car with its current map fields."""
        ts = int(time.time() * 1000)
        out = []
        for i, car in enumerate(self.cars):
            if scope is not None and car["brand"] != scope:
                continue
            fields = {**fields_of_signals(self.signals(i, car, ts)), "online": 1, "charging": 0}
            out.append(Position(car["vin"], car["brand"], car["model"], fields))
        return out

    def second(self, hub: Hub) -> None:
        """One second of the fleet: a twin change per car, published as ingest would."""
        self.tick += 1
        ts = int(time.time() * 1000)
        changes = [
            Change("twin", car["vin"], car["brand"], {"signals": self.signals(i, car, ts)})
            for i, car in enumerate(self.cars)
        ]
        for start in range(0, len(changes), PUBLISH_BATCH):
            hub.publish(changes[start : start + PUBLISH_BATCH])


class ByteCounter:
    """ASGI middleware: response bytes per path prefix, as sent (after any compression)."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.sent: dict[str, int] = {}

    async def __call__(
        self,
        scope: MutableMapping[str, Any],
        receive: Callable[[], Awaitable[Any]],
        send: Callable[[Any], Awaitable[None]],
    ) -> None:
        path = scope.get("path", "")

        async def counting(message: MutableMapping[str, Any]) -> None:
            if message["type"] == "http.response.body":
                self.sent[path] = self.sent.get(path, 0) + len(message.get("body", b""))
            await send(message)

        await self.app(scope, receive, counting)


def make_app(fleet: SyntheticFleet, mapdata: MapData, hub: Hub) -> FastAPI:
    feed = PositionFeed()
    feed.attach(hub)
    clock = SystemClock()
    platform = type(
        "BenchPlatform",
        (),
        {
            "mapdata": mapdata,
            "hub": hub,
            "clock": clock,
            "positions": PositionsService(fleet, feed, clock.now_ms),
            "settings": Settings(),  # the platform's defaults (stream limits…)
        },
    )()
    app = FastAPI()
    app.state.platform = platform
    app.include_router(routes_dashboard.router)
    app.include_router(routes_stream.router)
    app.dependency_overrides[deps.principal] = lambda: Principal("bench", Role.ADMIN, None)

    @app.get("/openapi.json")
    def openapi() -> dict[str, Any]:
        return {"paths": {}}

    @app.get("/v1/brands")
    def brands() -> dict[str, Any]:
        return {"items": [{"id": b, "name": n, "created_ms": 0} for b, n in BRANDS], "next": None}

    return app


RENDERED = """() => {
  const a = window.autocloud;
  const map = a && a.map;
  if (!map || !a.mapReady || !map.getLayer("vehicles")) return -1;
  const seen = new Map();
  for (const f of map.queryRenderedFeatures({ layers: ["vehicles", "clusters"] })) {
    const p = f.properties;
    seen.set(p.cluster_id !== undefined ? "c" + p.cluster_id : p.vin, p.point_count || 1);
  }
  return [...seen.values()].reduce((a, b) => a + b, 0);
}"""

# The clusters' count labels come after the vehicles (web/src/map/vehicles.js): drawn when
# some rendered cluster has its label (or no cluster is shown at all).
LABELLED = """() => {
  const map = window.autocloud.map;
  if (!map.queryRenderedFeatures({ layers: ["clusters"] }).length) return true;
  return Boolean(map.getLayer("cluster-count"))
    && map.queryRenderedFeatures({ layers: ["cluster-count"] }).length > 0;
}"""

PROBE = """() => {
  window.__frames = []; window.__long = 0;
  let last = performance.now();
  const loop = (t) => { window.__frames.push(t - last); last = t; requestAnimationFrame(loop); };
  requestAnimationFrame(loop);
  new PerformanceObserver((l) => { for (const e of l.getEntries()) window.__long += e.duration; })
    .observe({ type: "longtask", buffered: false });
  const a = window.autocloud;
  window.__s0 = { layer: { ...a.layer.stats }, stream: { ...a.counters },
                  fleet: { ...a.fleet.stats }, lists: { ...a.listStats } };
  a.layer.stats.maxBuildMs = 0; a.counters.maxMs = 0; a.listStats.maxMs = 0;
}"""

RESULT = """() => {
  const a = window.autocloud, s0 = window.__s0;
  const l = a.layer.stats, c = a.counters, f = a.fleet.stats;
  const rebuilds = l.batches - s0.layer.batches;
  const events = c.positions - s0.stream.positions;
  const parse = c.parseMs - s0.stream.parseMs, handle = c.handleMs - s0.stream.handleMs;
  const build = l.totalBuildMs - s0.layer.totalBuildMs;
  const lists = a.listStats.totalMs - s0.lists.totalMs;
  const listRedraws = a.listStats.redraws - s0.lists.redraws;
  return { frames: window.__frames.slice(1), long: window.__long, rebuilds, events,
           parse_ms: parse / events, handle_ms: handle / events, rebuild_ms: build / rebuilds,
           apply_ms: (f.applyMs - s0.fleet.applyMs) / (f.batches - s0.fleet.batches),
           list_ms: lists / listRedraws, list_max_ms: a.listStats.maxMs,
           dispatch_max_ms: c.maxMs, rebuild_max_ms: l.maxBuildMs,
           rows: (f.rows - s0.fleet.rows) / (f.batches - s0.fleet.batches),
           stream_chars: c.bytes - s0.stream.bytes };
}"""

MARKS = """() => performance.getEntriesByType("mark").filter((m) => m.name.startsWith("ac:"))
  .map((m) => [m.name, Math.round(m.startTime - window.__t0)])"""


def sign_in_and_render(page: Any, url: str, vehicles: int) -> tuple[float, float, list[Any]]:
    """Sign in; ms until every vehicle is drawn, ms until the cluster labels are, the marks."""
    page.goto(url)
    page.fill("#token", TOKEN)
    page.evaluate("() => { performance.clearMarks(); window.__t0 = performance.now(); }")
    page.click("button[type=submit]")
    page.wait_for_function(f"({RENDERED})() === {vehicles}", polling="raf", timeout=120_000)
    drawn = page.evaluate("performance.now() - window.__t0")
    page.wait_for_function(LABELLED, polling="raf", timeout=60_000)
    labelled = page.evaluate("performance.now() - window.__t0")
    return drawn, labelled, page.evaluate(MARKS)


def twin_stream_rate(port: int, seconds: float, encoding: str) -> float:
    """Bytes per second of the per-vehicle `twin` stream (no kinds), read by a plain client
    that sends `Accept-Encoding: encoding`."""
    got, started = 0, time.monotonic()
    url = f"http://127.0.0.1:{port}/v1/stream"
    with httpx.stream("GET", url, headers={"Accept-Encoding": encoding}, timeout=10) as r:
        for chunk in r.iter_raw():
            got += len(chunk)
            if time.monotonic() - started >= seconds:
                break
    return got / (time.monotonic() - started)


def run(vehicles: int, seconds: float, warm: bool) -> dict[str, Any]:
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as tmp:
        town = generate_town(Path(tmp) / "town.osm", seed=7, size_km=4)
        mapdata = MapData(town, Path(tmp) / "map", osm_map.roads_geojson, osm_map.encode)
        bbox = json.loads(gzip.decompress(mapdata.roads().gzip))["bbox"]
        fleet, hub = SyntheticFleet(vehicles, bbox), Hub()
        counter = ByteCounter(make_app(fleet, mapdata, hub))
        server = uvicorn.Server(
            uvicorn.Config(counter, host="127.0.0.1", port=0, log_level="error")
        )
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        while not server.started:
            time.sleep(0.05)
        port = server.servers[0].sockets[0].getsockname()[1]
        stop = threading.Event()

        def drive() -> None:
            while not stop.wait(1.0 - time.time() % 1.0):
                fleet.second(hub)

        driver = threading.Thread(target=drive, daemon=True)
        driver.start()
        url = f"http://127.0.0.1:{port}/dashboard/"
        try:
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
                context = browser.new_context(viewport={"width": 1366, "height": 768})
                page = context.new_page()
                first_render_ms, labelled_ms, marks = sign_in_and_render(page, url, vehicles)
                snapshot_bytes = counter.sent.get("/v1/fleet/positions", 0)
                page.evaluate(PROBE)
                bytes0, t0 = counter.sent.get("/v1/stream", 0), time.monotonic()
                time.sleep(seconds)
                result = page.evaluate(RESULT)
                elapsed = time.monotonic() - t0
                stream_bytes = counter.sent.get("/v1/stream", 0) - bytes0
                still = page.evaluate(f"({RENDERED})()")
                warm_ms = None
                if warm:
                    page.click("#sign-out")
                    warm_ms, _, _ = sign_in_and_render(page, url, vehicles)
                browser.close()
            twin_plain = twin_stream_rate(port, 3.0, "identity")
            twin_gzip = twin_stream_rate(port, 3.0, "gzip")
        finally:
            stop.set()
            server.should_exit = True
            thread.join(timeout=5)
    frames = sorted(result["frames"])
    parts = ("parse_ms", "handle_ms", "rebuild_ms", "list_ms")
    per_batch = sum(result[k] for k in parts)
    return {
        "vehicles": vehicles,
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "feed": "/v1/stream?kinds=positions,… (one positions event per second)",
        "first_render_ms": round(first_render_ms),
        "cluster_labels_ms": round(labelled_ms),
        "first_render_warm_ms": None if warm_ms is None else round(warm_ms),
        "first_render_marks_ms": dict(marks),
        "snapshot_kb_sent": round(snapshot_bytes / 1024, 1),
        "positions_events": result["events"],
        "rows_per_event": round(result["rows"]),
        "per_batch_ms_mean": round(per_batch, 1),
        "per_batch_parts_ms": {
            "parse": round(result["parse_ms"], 1),
            "apply_and_notify": round(result["handle_ms"], 1),
            "rebuild_source": round(result["rebuild_ms"], 1),
            "side_list_and_counts": round(result["list_ms"], 1),
        },
        "per_batch_ms_max": {
            "parse_and_apply": round(result["dispatch_max_ms"], 1),
            "rebuild_source": round(result["rebuild_max_ms"], 1),
            "side_list_and_counts": round(result["list_max_ms"], 1),
        },
        "long_task_ms_per_s": round(result["long"] / elapsed, 1),
        "frame_ms_p50": round(statistics.median(frames), 1),
        "frame_ms_p95": round(frames[int(len(frames) * 0.95)], 1),
        "frame_ms_max": round(frames[-1], 1),
        "stream_kb_per_s": round(stream_bytes / elapsed / 1024, 1),
        "twin_stream_kb_per_s_for_comparison": {
            "plain": round(twin_plain / 1024, 1),
            "gzip": round(twin_gzip / 1024, 1),
        },
        "markers_drawn_at_end": still,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--vehicles", type=int, default=10_000)
    parser.add_argument("--seconds", type=float, default=15)
    parser.add_argument("--warm", action="store_true", help="also time a second sign-in")
    args = parser.parse_args()
    print(json.dumps(run(args.vehicles, args.seconds, args.warm), indent=2))


if __name__ == "__main__":
    main()
