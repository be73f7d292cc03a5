"""Command round trip: API -> platform -> broker -> vehicle -> result -> ingest -> API.

The platform under test is `autocloud up` in a subprocess: the embedded tier (amqtt broker
in-process, SQLite), default settings except the per-caller rate limit, which is raised so
that one bench token may send thousands of commands a minute. 1,000 simulated vehicles are
provisioned through the API, enrolled with the platform's key (GET /v1/vehicles/{vin}/keys)
and connected with their own MQTT logins from this process (sim/transport.Pool).

Each vehicle runs the real vehicle side (`sim/inbound.receive` -> `sim/command_agent`:
Ed25519 verify, counter and expiry checks, interlocks, effect, `accepted` + `succeeded`) the
moment a command arrives, instead of at its next one-second simulator tick: so the measured
time excludes the simulated execution delay, but includes the vehicle's verification work.

One round trip = from just before `POST /v1/vehicles/{vin}/commands` until the long poll
`GET /v1/commands/{id}?wait_s=10` returns the command `succeeded`, measured by the client.
`--concurrency` client threads send to random vehicles. The platform's own timings of each
command (queued -> sent -> delivered -> finished) split the time.

    .venv/bin/python -m bench.commands --vehicles 1000 --commands 1000 --concurrency 1
"""

from __future__ import annotations

import argparse
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import msgspec

from autocloud.domain.command_keyset import key_entries
from autocloud.sim import inbound
from autocloud.sim.energy import PRESET_FOR, Powertrain
from autocloud.sim.faults import FaultPlan
from autocloud.sim.fleet import fleet_vin
from autocloud.sim.transport import Connection, Pool
from autocloud.sim.vehicle import SimVehicle
from bench.broker import free_port
from bench.sim_parts import machine

REPO = Path(__file__).resolve().parent.parent
BRAND = "bench-cmd"


def start_platform(work: Path, wait_ms: int) -> tuple[subprocess.Popen[bytes], httpx.Client, int]:
    api_port, mqtt_port = free_port(), free_port()
    env = {
        **os.environ,
        "AUTOCLOUD_LOG_LEVEL": "warning",
        "AUTOCLOUD_COMMAND_RATE_PER_CALLER": "1000000",
        "AUTOCLOUD_INGEST_WAIT_MS": str(wait_ms),
    }
    env.pop("AUTOCLOUD_CONFIG", None)
    command = [
        sys.executable,
        "-m",
        "autocloud.entrypoints.cli.main",
        "up",
        "--data-dir",
        str(work),
        "--api-port",
        str(api_port),
        "--mqtt-port",
        str(mqtt_port),
    ]
    log = (work / "platform.log").open("wb")
    process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=REPO)
    http = httpx.Client(base_url=f"http://127.0.0.1:{api_port}", timeout=30)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError((work / "platform.log").read_text()[-3000:])
        try:
            if http.get("/healthz").status_code == 200:
                break
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    http.headers["Authorization"] = f"Bearer {(work / 'admin-token').read_text().strip()}"
    return process, http, mqtt_port


def provision(http: httpx.Client, count: int) -> list[tuple[SimVehicle, str]]:
    """Register `count` vehicles; build each one's vehicle side, enrolled with its keys."""
    http.post("/v1/brands", json={"id": BRAND, "name": "Bench"}).raise_for_status()
    out = []
    for i in range(count):
        vin = fleet_vin("WVW", 900_000 + i)
        done = http.post("/v1/vehicles", json={"vin": vin, "brand": BRAND})
        done.raise_for_status()
        keys = http.get(f"/v1/vehicles/{vin}/keys").json()
        rng = random.Random(i)
        plan = FaultPlan(random.Random(i), offline_rate_per_h=0, clock_skew_s=0)
        car = SimVehicle(vin, BRAND, PRESET_FOR[Powertrain.BEV], rng, (0.0, 0.0), plan, f"b{i}")
        car.remote.trust(key_entries(keys))
        out.append((car, done.json()["credential"]["password"]))
    return out


class Vehicles(threading.Thread):
    """Every vehicle's MQTT session, pumped on this thread; commands answered on arrival."""

    def __init__(self, cars: list[tuple[SimVehicle, str]], port: int, nagle: bool) -> None:
        super().__init__(name="vehicles", daemon=True)
        self.pool = Pool()
        self.cars = {car.vin: car for car, _ in cars}
        self.conns = [
            Connection(car.vin, secret, "127.0.0.1", port, listen=inbound.SUBSCRIBED)
            for car, secret in cars
        ]
        self.stop = threading.Event()
        self.answered = 0
        self.nagle = nagle

    def connect(self) -> None:
        for conn in self.conns:
            self.pool.open(conn)
            sock = conn.client.socket()
            if self.nagle and isinstance(sock, socket.socket):  # undo sim/transport's NODELAY
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 0)
        if not self.pool.until(lambda: all(c.connected for c in self.conns), 120):
            raise RuntimeError("not every vehicle could connect")
        for conn in self.conns:
            state = {"online": True, "ts": int(time.time() * 1000)}
            conn.publish("state", msgspec.json.encode(state), retain=True)
        self.pool.until(lambda: all(c.pending == 0 for c in self.conns), 60)

    def run(self) -> None:
        while not self.stop.is_set():
            self.pool.pump(0.002)
            for conn in self.conns:
                if not conn.inbox:
                    continue
                car = self.cars[conn.vin]
                for subtopic, payload in conn.take_inbox():
                    now = int(time.time() * 1000)
                    for topic, body in inbound.receive(car, subtopic, payload, now):
                        conn.publish(topic, body)
                    self.answered += 1


def wait_online(http: httpx.Client, count: int) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        online = http.get("/v1/fleet", params={"online": "true", "limit": 1000}).json()["items"]
        if len(online) >= min(count, 1000):
            return
        time.sleep(0.5)
    raise RuntimeError("the platform did not see every vehicle online")


def round_trips(
    base: httpx.Client, vins: list[str], commands: int, concurrency: int
) -> list[dict[str, Any]]:
    """Send `commands` lock/unlock commands from `concurrency` threads; time each."""
    results: list[dict[str, Any]] = []
    lock = threading.Lock()
    left = [commands]

    def worker(seed: int) -> None:
        rng = random.Random(seed)
        http = httpx.Client(base_url=base.base_url, headers=base.headers, timeout=30)
        while True:
            with lock:
                if left[0] == 0:
                    return
                left[0] -= 1
            vin = rng.choice(vins)
            name = rng.choice(("lock", "unlock"))
            started = time.perf_counter()
            sent = http.post(f"/v1/vehicles/{vin}/commands", json={"name": name})
            sent.raise_for_status()
            posted = time.perf_counter()
            got = http.get(f"/v1/commands/{sent.json()['id']}", params={"wait_s": 10}).json()
            ended = time.perf_counter()
            t = got["timings"]
            row = {
                "state": got["state"],
                "round_trip_ms": (ended - started) * 1000,
                "post_ms": (posted - started) * 1000,
                "platform_sent_ms": (t["sent_ms"] or 0) - t["queued_ms"],
                "platform_to_accepted_ms": (t["delivered_ms"] or 0) - (t["sent_ms"] or 0),
                "platform_total_ms": (t["finished_ms"] or 0) - t["queued_ms"],
            }
            with lock:
                results.append(row)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def percentiles(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    q = statistics.quantiles(ordered, n=100, method="inclusive")
    return {"p50": round(q[49], 1), "p99": round(q[98], 1), "max": round(ordered[-1], 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vehicles", type=int, default=1000)
    parser.add_argument("--commands", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8])
    parser.add_argument(
        "--ingest-wait-ms", type=int, default=2, help="the platform's ingest_wait_ms (default 2)"
    )
    parser.add_argument(
        "--nagle",
        action="store_true",
        help="turn the vehicles' TCP_NODELAY (sim/transport sets it) off again, to compare",
    )
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-commands-"))
    process, http, mqtt_port = start_platform(work, args.ingest_wait_ms)
    vehicles: Vehicles | None = None
    report: dict[str, Any] = {
        "machine": machine(),
        "vehicles": args.vehicles,
        "ingest_wait_ms": args.ingest_wait_ms,
        "vehicle_tcp_nodelay": not args.nagle,
        "loadavg_before": os.getloadavg(),
        "runs": [],
    }
    try:
        t0 = time.monotonic()
        cars = provision(http, args.vehicles)
        vehicles = Vehicles(cars, mqtt_port, args.nagle)
        vehicles.connect()
        vehicles.start()
        wait_online(http, args.vehicles)
        print(f"{args.vehicles} vehicles provisioned and online in {time.monotonic() - t0:.0f} s")
        vins = list(vehicles.cars)
        round_trips(http, vins, 50, 4)  # warm-up, not reported
        for concurrency in args.concurrency:
            started = time.monotonic()
            rows = round_trips(http, vins, args.commands, concurrency)
            wall = time.monotonic() - started
            ok = [r for r in rows if r["state"] == "succeeded"]
            run = {
                "concurrency": concurrency,
                "loadavg_1m": round(os.getloadavg()[0], 2),
                "commands": len(rows),
                "succeeded": len(ok),
                "per_s": round(len(rows) / wall, 1),
                **{k: percentiles([r[k] for r in ok]) for k in ok[0] if k.endswith("_ms")},
            }
            report["runs"].append(run)
            print(json.dumps(run))
    finally:
        if vehicles is not None:
            vehicles.stop.set()
        process.terminate()
        process.wait(30)
    args.out.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    path = args.out / f"commands-{stamp}-{uuid.uuid4().hex[:4]}.json"
    path.write_text(json.dumps(report, indent=1))
    print(f"written {path}")


if __name__ == "__main__":
    main()
