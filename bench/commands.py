"""Command round trip: API -> platform -> broker -> vehicle -> result -> ingest -> API.

The platform under test is `autocloud up` in a subprocess, default settings except the
per-caller rate limit (raised so that one bench token may send thousands of commands a
minute), on one of two tiers (`--tier`):

- `embedded`: amqtt broker in-process, SQLite (`synchronous=FULL`) in a scratch directory;
- `single-node`: a private Mosquitto with dynamic security (configured as the tier configures
  it, `bench/broker.py`) and a fresh PostgreSQL database on the local server.

1,000 simulated vehicles are provisioned through the API (on Mosquitto each gets its dynsec
login), enrolled with the platform's key (GET /v1/vehicles/{vin}/keys) and connected with
their own MQTT logins from this process (sim/transport.Pool); each sends its state and one
full telemetry report (67 signals), so the twins are those of real cars. Each vehicle runs
the real vehicle side (`sim/inbound.receive` -> `sim/command_agent`: Ed25519 verify, counter
and expiry checks, interlocks, effect, `accepted` + `succeeded`) in paho's message callback,
the moment a command arrives, instead of at its next one-second simulator tick: so the
measured time excludes the simulated execution delay, but includes the vehicle's
verification work.

One round trip = from just before `POST /v1/vehicles/{vin}/commands` until the long poll
`GET /v1/commands/{id}?wait_s=10` returns the command `succeeded`, measured by the client.
`--concurrency` client threads send to random vehicles. Each round trip is split into legs
from the client's clock, the vehicle's and the platform's timings (queued -> sent ->
delivered -> finished; all clocks are this machine's, in ms):

    post_in      POST sent -> command queued (HTTP, auth, registry, gate)
    sign_store   queued -> sent (in the POST: sign, counter; `sent_ms` is taken before commit)
    post_out     sent -> POST answered (commit, publish, response)
    to_vehicle   sent -> the vehicle has it (commit, publish, broker)
    vehicle      the vehicle's verification and answer
    to_platform  the vehicle answered -> the platform received `succeeded`
    result_out   `succeeded` received -> long poll answered (ingest commit, wake, read, response)

    .venv/bin/python -m bench.commands --vehicles 1000 --commands 500 --concurrency 1 8
    .venv/bin/python -m bench.commands --tier single-node --concurrency 1 8
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import os
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import msgspec
from paho.mqtt.client import MQTTMessage

from autocloud.domain import command_signing
from autocloud.domain.command_keyset import key_entries
from autocloud.sim import inbound
from autocloud.sim.energy import PRESET_FOR, Powertrain
from autocloud.sim.faults import FaultPlan
from autocloud.sim.fleet import fleet_vin
from autocloud.sim.transport import Connection, Pool
from autocloud.sim.vehicle import SimVehicle
from bench.broker import free_port, running_broker
from bench.platform_proc import Database, wait_healthy
from bench.sim_parts import busy_between, cpu_seconds, cpu_times, machine

REPO = Path(__file__).resolve().parent.parent
BRAND = "bench-cmd"
LEGS = ("post_in", "sign_store", "post_out", "to_vehicle", "vehicle", "to_platform", "result_out")


@contextlib.contextmanager
def platform(tier: str, work: Path) -> Iterator[tuple[subprocess.Popen[bytes], httpx.Client, int]]:
    """`autocloud up` on `tier` in a subprocess, an admin client and the vehicles' MQTT port;
    stopped (and its PostgreSQL database dropped) at exit."""
    api_port, mqtt_port = free_port(), free_port()
    env = {
        **os.environ,
        "AUTOCLOUD_LOG_LEVEL": "warning",
        "AUTOCLOUD_COMMAND_RATE_PER_CALLER": "1000000",
    }
    env.pop("AUTOCLOUD_CONFIG", None)
    command = [sys.executable, "-m", "autocloud.entrypoints.cli.main", "up"]
    command += ["--data-dir", str(work), "--api-port", str(api_port)]
    with contextlib.ExitStack() as stack:
        if tier == "embedded":
            command += ["--mqtt-port", str(mqtt_port)]
        else:
            (work / "mosquitto").mkdir()
            broker = stack.enter_context(running_broker(work / "mosquitto"))
            db = Database.fresh("postgres", work, f"bench_cmd_{uuid.uuid4().hex[:8]}")
            stack.callback(db.drop)
            mqtt_port = broker.port
            command += ["--broker", f"mqtt://{broker.host}:{broker.port}", "--db", db.url]
            env["AUTOCLOUD_BROKER_ADMIN_USER"] = broker.admin_user
            env["AUTOCLOUD_BROKER_ADMIN_PASSWORD"] = broker.admin_password
        log_path = work / "platform.log"
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                command, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=REPO
            )
        try:
            http = httpx.Client(base_url=f"http://127.0.0.1:{api_port}", timeout=30)
            wait_healthy(process, http, log_path, 60)
            token = (work / "admin-token").read_text().strip()
            http.headers["Authorization"] = f"Bearer {token}"
            yield process, http, mqtt_port
        finally:
            process.terminate()
            process.wait(30)


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
    """Every vehicle's MQTT session, pumped on this thread; a command is answered in paho's
    message callback, as it is read from the socket (the answers go out on the next select)."""

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
        # command id -> (received, answered), epoch ms, read by the clients after their poll
        self.seen: dict[str, tuple[float, float]] = {}

    def connect(self) -> None:
        for conn in self.conns:
            self.pool.open(conn)
            sock = conn.client.socket()
            if self.nagle and isinstance(sock, socket.socket):  # undo sim/transport's NODELAY
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 0)
        if not self.pool.until(lambda: all(c.connected for c in self.conns), 120):
            raise RuntimeError("not every vehicle could connect")
        for conn in self.conns:
            now = int(time.time() * 1000)
            conn.publish("state", msgspec.json.encode({"online": True, "ts": now}), retain=True)
            # One full report, so that the twin the platform reads holds what a real car's
            # does (the gate reads it for every command). Parked for good: no trip planned.
            car = self.cars[conn.vin]
            car.park_left_s, car.remote.report_now = 1e12, True
            car.tick(0.001, now, None, None)  # type: ignore[arg-type]  # parked: no router
            for subtopic, payload in car.outgoing(True):
                conn.publish(subtopic, payload)
        self.pool.until(lambda: all(c.pending == 0 for c in self.conns), 60)
        for conn in self.conns:
            conn.client.on_message = self._answerer(conn)

    def _answerer(self, conn: Connection) -> Any:
        car, prefix = self.cars[conn.vin], conn.topic("")

        def on_message(_c: object, _u: object, message: MQTTMessage) -> None:
            received = time.time() * 1000
            subtopic, payload = message.topic[len(prefix) :], bytes(message.payload)
            for topic, body in inbound.receive(car, subtopic, payload, int(received)):
                conn.publish(topic, body)
            self.answered += 1
            command = command_signing.decode(payload) if subtopic == "commands" else None
            if command is not None:
                self.seen[command.id] = (received, time.time() * 1000)

        return on_message

    def run(self) -> None:
        while not self.stop.is_set():
            self.pool.pump(0.05)


def wait_online(http: httpx.Client, count: int) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        online = http.get("/v1/fleet", params={"online": "true", "limit": 1000}).json()["items"]
        if len(online) >= min(count, 1000):
            return
        time.sleep(0.5)
    raise RuntimeError("the platform did not see every vehicle online")


def round_trips(
    base: httpx.Client, vehicles: Vehicles, commands: int, concurrency: int
) -> list[dict[str, Any]]:
    """Send `commands` lock/unlock commands from `concurrency` threads; time each."""
    results: list[dict[str, Any]] = []
    lock = threading.Lock()
    left = [commands]
    vins = list(vehicles.cars)

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
            wall = time.time() * 1000
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
            }
            seen = vehicles.seen.get(got["id"])
            if seen is not None and t["sent_ms"] and t["finished_ms"]:
                v_in, v_out = seen
                post_end, get_end = wall + row["post_ms"], wall + row["round_trip_ms"]
                legs = {
                    "post_in": t["queued_ms"] - wall,
                    "sign_store": t["sent_ms"] - t["queued_ms"],
                    "post_out": post_end - t["sent_ms"],
                    "to_vehicle": v_in - t["sent_ms"],
                    "vehicle": v_out - v_in,
                    "to_platform": t["finished_ms"] - v_out,
                    "result_out": get_end - t["finished_ms"],
                }
                row.update({f"{k}_ms": v for k, v in legs.items()})
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


def summary(
    rows: list[dict[str, Any]], wall: float, concurrency: int, cpu: dict[str, float]
) -> dict[str, Any]:
    ok = [r for r in rows if r["state"] == "succeeded"]
    timed = [r for r in ok if "post_in_ms" in r]
    return {
        "concurrency": concurrency,
        "loadavg_1m": round(os.getloadavg()[0], 2),
        "commands": len(rows),
        "succeeded": len(ok),
        "per_s": round(len(rows) / wall, 1),
        # CPU time per command (ms) of the platform process, of this one (vehicles and
        # clients), and of the whole machine (2 cores: both, other users' work included).
        "cpu_ms_per_command": {k: round(v * 1000 / len(rows), 1) for k, v in cpu.items()},
        "machine_busy_share": round(cpu["machine"] / (wall * (os.cpu_count() or 1)), 2),
        "round_trip_ms": percentiles([r["round_trip_ms"] for r in ok]),
        "post_ms": percentiles([r["post_ms"] for r in ok]),
        # Legs (ms; platform times are whole ms, so each leg is +-1 ms). Their p50s add up
        # to about the round trip's p50; p99s do not add.
        "legs_timed": len(timed),
        "legs": {k: percentiles([r[f"{k}_ms"] for r in timed]) for k in LEGS} if timed else {},
    }


def spy_on(pid: int, out: Path, gil: bool) -> subprocess.Popen[bytes]:
    """`py-spy record` on the platform until interrupted (raw collapsed stacks, by thread)."""
    spy = Path(sys.executable).parent / "py-spy"
    command = [str(spy), "record", "--pid", str(pid), "--rate", "200", "--format", "raw"]
    command += ["--output", str(out), "--threads", "--nonblocking", *(["--gil"] if gil else [])]
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def cpu_sample(platform_pid: int) -> dict[str, float]:
    """CPU seconds so far: the platform's, this process's, and the machine's (busy)."""
    return {
        "platform": cpu_seconds(platform_pid) or 0.0,
        "bench": cpu_seconds(os.getpid()) or 0.0,
        "machine": busy_between({"cpu": (0.0, 0.0)}, cpu_times())["cpu"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tier", choices=("embedded", "single-node"), default="embedded")
    parser.add_argument("--vehicles", type=int, default=1000)
    parser.add_argument("--commands", type=int, default=500)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8])
    parser.add_argument(
        "--nagle",
        action="store_true",
        help="turn the vehicles' TCP_NODELAY (sim/transport sets it) off again, to compare",
    )
    parser.add_argument(
        "--profile",
        choices=("active", "gil"),
        help="py-spy the platform during each run (raw collapsed stacks into --out): the "
        "samples of threads not idle, or of the thread holding the GIL",
    )
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-commands-"))
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    name = f"commands-{args.tier}-{stamp}-{uuid.uuid4().hex[:4]}"
    args.out.mkdir(parents=True, exist_ok=True)
    report: dict[str, Any] = {
        "machine": machine(),
        "tier": args.tier,
        "vehicles": args.vehicles,
        "vehicle_tcp_nodelay": not args.nagle,
        "loadavg_before": os.getloadavg(),
        "runs": [],
    }
    vehicles: Vehicles | None = None
    with platform(args.tier, work) as (process, http, port):
        try:
            t0 = time.monotonic()
            cars = provision(http, args.vehicles)
            vehicles = Vehicles(cars, port, args.nagle)
            vehicles.connect()
            vehicles.start()
            wait_online(http, args.vehicles)
            time.sleep(3)  # the connect burst's aftermath (ingest, look-ups for the returning)
            # The 1,000 simulated cars are long-lived objects of this process: without this,
            # each full collection walks them all (over 100 ms, measured), pausing the
            # vehicles and the clients, which is this harness's latency, not the platform's.
            gc.freeze()
            took = time.monotonic() - t0
            print(f"{args.vehicles} vehicles provisioned and online in {took:.0f} s")
            round_trips(http, vehicles, 50, 4)  # warm-up, not reported
            for concurrency in args.concurrency:
                spy = None
                if args.profile:
                    spy_out = args.out / f"{name}-profile-{args.profile}-c{concurrency}.txt"
                    spy = spy_on(process.pid, spy_out, args.profile == "gil")
                started, before = time.monotonic(), cpu_sample(process.pid)
                rows = round_trips(http, vehicles, args.commands, concurrency)
                wall, after = time.monotonic() - started, cpu_sample(process.pid)
                cpu = {k: after[k] - before[k] for k in before}
                if spy is not None:
                    spy.send_signal(2)  # SIGINT: py-spy writes what it has
                    spy.wait(30)
                run = summary(rows, wall, concurrency, cpu)
                report["runs"].append(run)
                print(json.dumps(run))
        finally:
            if vehicles is not None:
                vehicles.stop.set()
    shutil.rmtree(work, ignore_errors=True)  # the platform's data and broker files
    path = args.out / f"{name}.json"
    path.write_text(json.dumps(report, indent=1))
    print(f"written {path}")


if __name__ == "__main__":
    main()
