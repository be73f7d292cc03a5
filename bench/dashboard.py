"""Dashboard benchmark: the fleet map with N vehicles in headless Chromium.

    .venv/bin/python bench/dashboard.py --vehicles 10000 --seconds 20

What it feeds: a **synthetic** platform in this process, not a real one (10,000 provisioned
vehicles driving would need the simulator and the ingest path, which have their own
benchmarks). It serves the real built dashboard (web/dist) and the real road GeoJSON of a
generated town through the platform's own dashboard routes, and stands in for the four API
calls the map makes: /v1/brands, /v1/fleet (paged, 1000 per page, like the platform),
/openapi.json (no feature routes) and /v1/stream. The stream sends, once per second, one
`twin` event per vehicle shaped like the platform's own (the ten signals a moving electric
car reports each second: position, speed, heading, SoC, energy, ranges, power, odometer),
so the browser parses and applies exactly what it would from a real platform.

Measured in the page (Chromium's clock):
* first render: from pressing "Sign in" until every vehicle is drawn (the rendered markers,
  clusters counted by their size, add up to N);
* per 1 Hz batch: main-thread time of rebuilding the map source (`layer.stats`), the main
  thread's busy time per second (Long Tasks API: tasks over 50 ms), and the frame intervals
  (requestAnimationFrame) while updates stream in;
* bandwidth: bytes of the stream per second per connected browser (counted by the server).
"""

import argparse
import asyncio
import json
import math
import random
import statistics
import tempfile
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, StreamingResponse

from autocloud.adapters import osm_map
from autocloud.entrypoints.api import routes_dashboard
from autocloud.services.mapdata import MapData
from autocloud.sim.town import generate_town

CHROMIUM = "/usr/bin/chromium"
TOKEN = "ac_bench"
BRANDS = [("volkswagen", "Volkswagen"), ("skoda", "Škoda"), ("bmw", "BMW")]
MODELS = ["ID.3", "Enyaq", "i4", "Golf", "Octavia", "330e"]
P = "Vehicle."


class SyntheticFleet:
    """N cars moving on circles around the town; positions advance once per second."""

    def __init__(self, n: int, bbox: list[float]) -> None:
        rng = random.Random(1)
        west, south, east, north = bbox
        self.cars = [
            {
                "vin": f"WVWZZZ1K{i:09d}",
                "brand": BRANDS[i % 3][0],
                "model": MODELS[i % len(MODELS)],
                "lat0": rng.uniform(south, north),
                "lon0": rng.uniform(west, east),
                "phase": rng.uniform(0, 2 * math.pi),
            }
            for i in range(n)
        ]
        self.tick = 0
        self.bytes_sent = 0

    def position(self, car: dict[str, Any]) -> tuple[float, float]:
        angle = car["phase"] + self.tick * 0.02
        return car["lat0"] + 0.0008 * math.sin(angle), car["lon0"] + 0.0012 * math.cos(angle)

    def fleet_page(self, cursor: int, limit: int) -> dict[str, Any]:
        items = []
        for car in self.cars[cursor : cursor + limit]:
            lat, lon = self.position(car)
            items.append(
                {
                    "vin": car["vin"],
                    "brand": car["brand"],
                    "model": car["model"],
                    "online": True,
                    "signals": {
                        P + "CurrentLocation.Latitude": lat,
                        P + "CurrentLocation.Longitude": lon,
                        P + "Speed": 42.0,
                        P + "Powertrain.TractionBattery.StateOfCharge.Current": 55.0,
                    },
                }
            )
        end = cursor + limit
        return {"items": items, "next": str(end) if end < len(self.cars) else None}

    def batch(self) -> bytes:
        """One second of twin events, in the platform's SSE framing."""
        self.tick += 1
        ts = int(time.time() * 1000)
        out = []
        for i, car in enumerate(self.cars):
            lat, lon = self.position(car)
            values = {
                "TraveledDistance": 60_602_732 + self.tick * 12,
                "Powertrain.TractionBattery.StateOfCharge.Current": 55.0 - self.tick * 0.001,
                "Powertrain.TractionBattery.StateOfCharge.CurrentEnergy": 31.4,
                "Powertrain.TractionBattery.Range": 203_140,
                "Powertrain.TractionBattery.CurrentPower": -24_345.0,
                "Powertrain.Range": 279_530,
                "Speed": 40 + (i % 20),
                "CurrentLocation.Heading": (self.tick * 3) % 360,
                "CurrentLocation.Latitude": lat,
                "CurrentLocation.Longitude": lon,
            }
            signals = {P + k: {"value": v, "ts": ts} for k, v in values.items()}
            body = {"vin": car["vin"], "brand": car["brand"], "signals": signals}
            out.append(f"event: twin\r\ndata: {json.dumps(body, separators=(',', ':'))}\r\n\r\n")
        data = "".join(out).encode()
        self.bytes_sent += len(data)
        return data


def make_app(fleet: SyntheticFleet, mapdata: MapData) -> FastAPI:
    app = FastAPI()
    app.state.platform = type("P", (), {"mapdata": mapdata})()
    app.include_router(routes_dashboard.router)

    @app.get("/openapi.json")
    def openapi() -> dict[str, Any]:
        return {"paths": {}}

    @app.get("/v1/brands")
    def brands() -> dict[str, Any]:
        return {"items": [{"id": b, "name": n, "created_ms": 0} for b, n in BRANDS], "next": None}

    @app.get("/v1/fleet")
    def fleet_page(
        cursor: str | None = None, limit: int = 100, where: str | None = None
    ) -> JSONResponse:
        if where:  # the charging query: nobody charges in this benchmark
            return JSONResponse({"items": [], "next": None})
        return JSONResponse(fleet.fleet_page(int(cursor or 0), limit))

    @app.get("/v1/stream")
    async def stream(request: Request) -> StreamingResponse:
        async def events() -> AsyncIterator[bytes]:
            yield b"event: ready\r\ndata: {}\r\n\r\n"
            while not await request.is_disconnected():
                await asyncio.sleep(1)
                yield fleet.batch()

        return StreamingResponse(events(), media_type="text/event-stream")

    return app


def _auth(app: FastAPI) -> None:
    """The dashboard's map route checks a token: accept the bench's one."""
    from autocloud.domain.access import Principal, Role
    from autocloud.entrypoints.api import deps

    app.dependency_overrides[deps.principal] = lambda: Principal("bench", Role.ADMIN, None)


RENDERED = """() => {
  const map = window.autocloud && window.autocloud.map;
  if (!map || !map.getLayer("vehicles")) return -1;
  const seen = new Map();
  for (const f of map.queryRenderedFeatures({ layers: ["vehicles", "clusters"] })) {
    const p = f.properties;
    seen.set(p.cluster_id !== undefined ? "c" + p.cluster_id : p.vin, p.point_count || 1);
  }
  return [...seen.values()].reduce((a, b) => a + b, 0);
}"""

PROBE = """() => {
  window.__frames = []; window.__long = 0;
  let last = performance.now();
  const loop = (t) => { window.__frames.push(t - last); last = t; requestAnimationFrame(loop); };
  requestAnimationFrame(loop);
  new PerformanceObserver((l) => { for (const e of l.getEntries()) window.__long += e.duration; })
    .observe({ type: "longtask", buffered: false });
  const s = window.autocloud.layer.stats;
  window.__stats0 = { batches: s.batches, total: s.totalBuildMs };
  s.maxBuildMs = 0;
}"""


def run(vehicles: int, seconds: float) -> dict[str, Any]:
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as tmp:
        town = generate_town(Path(tmp) / "town.osm", seed=7, size_km=4)
        mapdata = MapData(town, Path(tmp) / "map", osm_map.roads_geojson, osm_map.encode)
        bbox = json.loads(__import__("gzip").decompress(mapdata.roads().gzip))["bbox"]
        fleet = SyntheticFleet(vehicles, bbox)
        app = make_app(fleet, mapdata)
        _auth(app)
        server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="error"))
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        while not server.started:
            time.sleep(0.05)
        port = server.servers[0].sockets[0].getsockname()[1]
        url = f"http://127.0.0.1:{port}/dashboard/"
        try:
            with sync_playwright() as p:
                browser = p.chromium.launch(
                    executable_path=CHROMIUM,
                    args=["--use-angle=swiftshader", "--enable-unsafe-swiftshader"],
                )
                page = browser.new_page(viewport={"width": 1366, "height": 768})
                page.goto(url)
                page.fill("#token", TOKEN)
                page.evaluate("() => { window.__t0 = performance.now(); }")
                page.click("button[type=submit]")
                page.wait_for_function(
                    f"({RENDERED})() === {vehicles}", polling="raf", timeout=120_000
                )
                first_render_ms = page.evaluate("performance.now() - window.__t0")
                page.evaluate(PROBE)
                bytes0, t0 = fleet.bytes_sent, time.monotonic()
                time.sleep(seconds)
                result = page.evaluate(
                    """() => {
                      const s = window.autocloud.layer.stats;
                      const n = s.batches - window.__stats0.batches;
                      return { frames: window.__frames.slice(1), long: window.__long,
                               batches: n, mean: (s.totalBuildMs - window.__stats0.total) / n,
                               max: s.maxBuildMs, events: window.autocloud.fleet.version };
                    }"""
                )
                elapsed = time.monotonic() - t0
                still = page.evaluate(f"({RENDERED})()")
                browser.close()
        finally:
            server.should_exit = True
            thread.join(timeout=5)
    frames = sorted(result["frames"])
    return {
        "vehicles": vehicles,
        "first_render_ms": round(first_render_ms),
        "source_rebuilds": result["batches"],
        "rebuild_ms_mean": round(result["mean"], 1),
        "rebuild_ms_max": round(result["max"], 1),
        "long_task_ms_per_s": round(result["long"] / elapsed, 1),
        "frame_ms_p50": round(statistics.median(frames), 1),
        "frame_ms_p95": round(frames[int(len(frames) * 0.95)], 1),
        "frame_ms_max": round(frames[-1], 1),
        "stream_kb_per_s": round((fleet.bytes_sent - bytes0) / elapsed / 1024, 1),
        "markers_drawn_at_end": still,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--vehicles", type=int, default=10_000)
    parser.add_argument("--seconds", type=float, default=20)
    args = parser.parse_args()
    print(json.dumps(run(args.vehicles, args.seconds), indent=2))


if __name__ == "__main__":
    main()
