"""Parts of `bench/sim.py`: the simulator without a network, the platform under test as a
subprocess (embedded or Mosquitto tier), provisioning through its API, and CPU accounting.

CPU time is read from `/proc/<pid>/stat` (utime + stime of the whole process, every thread),
so the simulator, the platform and the broker can be compared over the same wall-clock window.
"""

from __future__ import annotations

import contextlib
import cProfile
import gc
import io
import os
import pstats
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from autocloud.entrypoints.cli.client import Api
from autocloud.entrypoints.cli.sim_cmd import ApiProvisioner
from autocloud.sim.fleet import Fleet, FleetConfig, collector_tuned
from autocloud.sim.places import Places
from autocloud.sim.roads import LatLon, Route, Router
from autocloud.sim.vehicle import SimVehicle
from bench.broker import Broker, free_port, rss_kb
from bench.platform_proc import parse_metrics, wait_healthy

REPO = Path(__file__).resolve().parent.parent
START_TIMEOUT_S = 60.0
CLK_TCK = os.sysconf("SC_CLK_TCK")


# -- machine and processes ---------------------------------------------------------------------


def machine() -> dict[str, Any]:
    """nproc, CPU model and RAM of this machine, from /proc."""
    model = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    mem_kb = 0
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            mem_kb = int(line.split()[1])
    return {
        "nproc": os.cpu_count(),
        "cpu_model": model,
        "ram_gib": round(mem_kb / 1024 / 1024, 1),
        "python": sys.version.split()[0],
        "kernel": os.uname().release,
    }


def cpu_seconds(pid: int) -> float | None:
    """utime + stime of process `pid` (all its threads) so far, or None if it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def cpu_times() -> dict[str, tuple[float, float]]:
    """(busy, total) seconds of every CPU line of /proc/stat ("cpu" is all of them)."""
    out: dict[str, tuple[float, float]] = {}
    for line in Path("/proc/stat").read_text().splitlines():
        if not line.startswith("cpu"):
            break
        name, *values = line.split()
        ticks = [int(v) for v in values[:8]]  # user nice system idle iowait irq softirq steal
        idle = ticks[3] + ticks[4]
        out[name] = ((sum(ticks) - idle) / CLK_TCK, sum(ticks) / CLK_TCK)
    return out


def busy_between(
    before: dict[str, tuple[float, float]], after: dict[str, tuple[float, float]]
) -> dict[str, float]:
    """Busy seconds of each CPU line between two `cpu_times()` samples."""
    return {name: after[name][0] - before[name][0] for name in after if name in before}


def others_cpu(pids: list[int], seconds: float = 2.0) -> float:
    """CPU the rest of the machine used over `seconds`, as a share of one core (not `pids`)."""
    ours0 = sum(cpu_seconds(p) or 0.0 for p in pids)
    machine0 = cpu_times()
    time.sleep(seconds)
    ours = sum(cpu_seconds(p) or 0.0 for p in pids) - ours0
    busy = busy_between(machine0, cpu_times())["cpu"]
    return max(0.0, busy - ours) / seconds


def wait_quiet(pids: list[int], budget_s: float, limit: float = 0.15) -> dict[str, Any]:
    """Wait (up to `budget_s`) until other processes use less than `limit` of a core: other
    people's benchmarks on this machine would take CPU from the simulator or the platform."""
    started = time.monotonic()
    level = others_cpu(pids)
    while level > limit and time.monotonic() - started < budget_s:
        time.sleep(3.0)
        level = others_cpu(pids)
    return {
        "waited_s": round(time.monotonic() - started, 1),
        "others_pct_of_core": round(100 * level, 1),
        "quiet": level <= limit,
    }


def pin(pid: int, cpus: set[int]) -> None:
    """Pin every thread of `pid` to `cpus` (threads started later inherit it)."""
    try:
        tids = [int(t) for t in os.listdir(f"/proc/{pid}/task")]
    except OSError:
        tids = [pid]
    for tid in tids:
        with contextlib.suppress(OSError):  # the thread ended meanwhile
            os.sched_setaffinity(tid, cpus)


# -- provisioning ------------------------------------------------------------------------------


class NullProvisioner:
    """For the simulation without a network: nothing is registered anywhere."""

    def brand(self, brand_id: str, name: str) -> None:
        pass

    def vehicle(self, vin: str, brand: str, model: str) -> str:
        return "-"


class CachingProvisioner:
    """Registers each VIN through the API once; later fleets of the run reuse its secret.

    Fleets with different seeds get the same VINs (`fleet_vin` by index) but other sessions
    (`sid`), so a run after another is not refused as a duplicate of it.
    """

    def __init__(self, api: Api) -> None:
        self._inner = ApiProvisioner(api)
        self._brands: set[str] = set()
        self.secrets: dict[str, str] = {}
        self.seconds = 0.0
        self.registered = 0

    def brand(self, brand_id: str, name: str) -> None:
        if brand_id not in self._brands:
            self._inner.brand(brand_id, name)
            self._brands.add(brand_id)

    def vehicle(self, vin: str, brand: str, model: str) -> str:
        if vin not in self.secrets:
            started = time.perf_counter()
            self.secrets[vin] = self._inner.vehicle(vin, brand, model)
            self.seconds += time.perf_counter() - started
            self.registered += 1
        return self.secrets[vin]

    @property
    def per_s(self) -> float:
        return self.registered / self.seconds if self.seconds else 0.0


# -- the simulation without a network ----------------------------------------------------------


class TimedRouter(Router):
    """A `Router` that adds up the time spent routing (OSRM `Route` calls)."""

    def __init__(self, osrm_base: Path) -> None:
        super().__init__(osrm_base)
        self.route_s = 0.0
        self.routes = 0

    def route(self, a: LatLon, b: LatLon) -> Route | None:
        started = time.perf_counter()
        try:
            return super().route(a, b)
        finally:
            self.route_s += time.perf_counter() - started
            self.routes += 1


def fleet_vehicles(
    router: Router, places: Places, vehicles: int, seed: int, *, driving: bool
) -> list[SimVehicle]:
    """`vehicles` cars built exactly as `Fleet.provision` builds them (same seeds, mix, faults)."""
    fleet = Fleet(FleetConfig(vehicles=vehicles, seed=seed), router, places, NullProvisioner())
    fleet.provision()
    if driving:
        for vehicle in fleet.vehicles:
            vehicle.park_left_s = 0.0
    return fleet.vehicles


def keep_driving(vehicles: list[SimVehicle]) -> None:
    """Send every parked car on its next trip at once (so it reports at 1 Hz)."""
    for vehicle in vehicles:
        if vehicle.follower is None:
            vehicle.park_left_s = 0.0


@dataclass
class PureResult:
    """One run of the simulator loop with a no-op transport, on one core."""

    scenario: str
    vehicles: int
    sim_seconds: int
    wall_s: float
    tick_s: float  # plan.online + SimVehicle.tick (includes routing)
    outgoing_s: float  # SimVehicle.outgoing: batching and JSON encoding
    route_s: float
    routes: int
    messages: int
    payload_bytes: int
    moving_mean: float
    cpu_s: float
    per_second: list[dict[str, float]] = field(default_factory=list)

    @property
    def updates(self) -> int:
        return self.vehicles * self.sim_seconds

    def as_dict(self) -> dict[str, Any]:
        physics_s = self.wall_s - self.route_s
        return {
            "scenario": self.scenario,
            "vehicles": self.vehicles,
            "sim_seconds": self.sim_seconds,
            "updates": self.updates,
            "wall_s": round(self.wall_s, 3),
            "cpu_s": round(self.cpu_s, 3),
            "updates_per_s": round(self.updates / self.wall_s),
            "updates_per_s_without_routing": round(self.updates / physics_s),
            "us_per_update": round(self.wall_s / self.updates * 1e6, 2),
            "share_tick": round(self.tick_s / self.wall_s, 3),
            "share_outgoing": round(self.outgoing_s / self.wall_s, 3),
            "share_routing": round(self.route_s / self.wall_s, 4),
            "routes": self.routes,
            "messages": self.messages,
            "messages_per_sim_s": round(self.messages / self.sim_seconds, 1),
            "mean_payload_bytes": round(self.payload_bytes / max(1, self.messages)),
            "moving_mean": round(self.moving_mean, 1),
            "per_second_sample": self.per_second,
        }


def pure_run(
    router: TimedRouter,
    places: Places,
    vehicles: list[SimVehicle],
    sim_seconds: int,
    *,
    scenario: str,
    driving: bool,
    start_ms: int,
    sample_every: int = 30,
) -> PureResult:
    """Advance every car `sim_seconds` ticks as `Fleet._tick` does, minus the MQTT session:
    the payloads from `outgoing(online)` are only counted. One thread, so one core."""
    route_s0, routes0 = router.route_s, router.routes
    cpu0 = cpu_seconds(os.getpid()) or 0.0
    tick_s = outgoing_s = 0.0
    messages = size = moving_sum = 0
    per_second: list[dict[str, float]] = []
    clock = time.perf_counter
    started = clock()
    chunk_started, chunk_updates = started, 0
    now_ms = start_ms
    with collector_tuned():  # as `Fleet.run` does
        for second in range(1, sim_seconds + 1):
            now_ms += 1000
            for vehicle in vehicles:
                t0 = clock()
                online = vehicle.plan.online(1.0)
                vehicle.tick(1.0, now_ms, router, places)
                t1 = clock()
                for _subtopic, payload in vehicle.outgoing(online):
                    messages += 1
                    size += len(payload)
                outgoing_s += clock() - t1
                tick_s += t1 - t0
            moving = sum(v.follower is not None for v in vehicles)
            moving_sum += moving
            if driving:
                keep_driving(vehicles)
            chunk_updates += len(vehicles)
            if second % sample_every == 0:
                now = clock()
                per_second.append(
                    {
                        "sim_s": second,
                        "moving": moving,
                        "updates_per_s": round(chunk_updates / (now - chunk_started)),
                    }
                )
                chunk_started, chunk_updates = now, 0
    wall = clock() - started
    return PureResult(
        scenario=scenario,
        vehicles=len(vehicles),
        sim_seconds=sim_seconds,
        wall_s=wall,
        tick_s=tick_s,
        outgoing_s=outgoing_s,
        route_s=router.route_s - route_s0,
        routes=router.routes - routes0,
        messages=messages,
        payload_bytes=size,
        moving_mean=moving_sum / sim_seconds,
        cpu_s=(cpu_seconds(os.getpid()) or 0.0) - cpu0,
        per_second=per_second,
    )


def profile_driving(
    router: TimedRouter,
    places: Places,
    vehicles: list[SimVehicle],
    sim_seconds: int,
    start_ms: int,
    top: int = 15,
) -> tuple[list[dict[str, Any]], str]:
    """cProfile of the all-driving loop: the top functions by own time, and the full text."""
    profiler = cProfile.Profile()
    now_ms = start_ms
    profiler.enable()
    for _ in range(sim_seconds):
        now_ms += 1000
        for vehicle in vehicles:
            online = vehicle.plan.online(1.0)
            vehicle.tick(1.0, now_ms, router, places)
            vehicle.outgoing(online)
        keep_driving(vehicles)
    profiler.disable()
    stats = pstats.Stats(profiler)
    total = stats.total_tt  # type: ignore[attr-defined]
    rows = []
    entries = stats.stats  # type: ignore[attr-defined]
    for (filename, line, name), (_cc, calls, tottime, cumtime, _callers) in sorted(
        entries.items(), key=lambda item: item[1][2], reverse=True
    )[:top]:
        where = filename.replace(str(REPO) + "/", "")
        rows.append(
            {
                "function": f"{where}:{line}({name})" if line else name,
                "calls": calls,
                "own_s": round(tottime, 3),
                "own_share": round(tottime / total, 3),
                "cumulative_s": round(cumtime, 3),
                "cumulative_share": round(cumtime / total, 3),
            }
        )
    text = io.StringIO()
    pstats.Stats(profiler, stream=text).sort_stats("tottime").print_stats(40)
    return rows, text.getvalue()


def warm_routes(router: Router, places: Places, count: int = 20, seed: int = 1) -> None:
    """A few routes first, so OSRM's first-call costs do not land in a measurement."""
    rng = random.Random(seed)
    for _ in range(count):
        router.route(places.random_destination(rng), places.random_destination(rng))


# -- the platform under test -------------------------------------------------------------------


class PlatformProcess:
    """`autocloud up` in a subprocess: the embedded tier (amqtt in the same process) or, with
    `broker`, the single-node tier's platform against a private Mosquitto with dynsec.

    SQLite in the data directory unless `db` is given. With `cpus`, the process (and every
    thread it starts) is pinned to those CPUs before it executes.
    """

    def __init__(
        self,
        work: Path,
        *,
        broker: Broker | None = None,
        db: str | None = None,
        cpus: set[int] | None = None,
    ) -> None:
        self.work = work
        self.data_dir = work / "platform"
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.api_port = free_port()
        self.api = f"http://127.0.0.1:{self.api_port}"
        self.broker = broker
        env = {**os.environ, "AUTOCLOUD_LOG_LEVEL": "warning"}
        env.pop("AUTOCLOUD_CONFIG", None)
        env.pop("AUTOCLOUD_TOKEN", None)
        self.command = [
            sys.executable,
            "-m",
            "autocloud.entrypoints.cli.main",
            "up",
            "--data-dir",
            str(self.data_dir),
            "--api-port",
            str(self.api_port),
        ]
        if broker is None:
            self.mqtt = ("127.0.0.1", free_port())
            self.command += ["--mqtt-port", str(self.mqtt[1])]
        else:
            self.mqtt = (broker.host, broker.port)
            self.command += ["--broker", broker.url]
            env["AUTOCLOUD_BROKER_ADMIN_USER"] = broker.admin_user
            env["AUTOCLOUD_BROKER_ADMIN_PASSWORD"] = broker.admin_password
        if db:
            self.command += ["--db", db]
        self.log_path = work / "platform.log"
        preexec: Callable[[], None] | None = None
        if cpus is not None:
            wanted = set(cpus)

            def preexec() -> None:
                os.sched_setaffinity(0, wanted)

        with self.log_path.open("wb") as log:
            self._process = subprocess.Popen(
                self.command,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=REPO,
                preexec_fn=preexec,
            )
        self.http = httpx.Client(base_url=self.api, timeout=10)
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise
        self.token = (self.data_dir / "admin-token").read_text().strip()

    @property
    def pid(self) -> int:
        return self._process.pid

    def _wait_ready(self) -> None:
        wait_healthy(self._process, self.http, self.log_path, START_TIMEOUT_S)

    def api_client(self) -> Api:
        return Api(self.api, data_dir=self.data_dir)

    def metrics(self) -> dict[str, float]:
        return parse_metrics(self.http.get("/metrics").text)

    def counters(self) -> dict[str, float]:
        """Messages received, signals stored and dead letters so far (from /metrics)."""
        m = self.metrics()

        def total(prefix: str) -> float:
            return sum(v for k, v in m.items() if k.startswith(prefix))

        return {
            "messages_in": total("autocloud_messages_in_total"),
            "data_messages_in": total("autocloud_messages_in_total")
            - total('autocloud_messages_in_total{topic="state"}'),
            "signals_stored": total("autocloud_signals_stored_total"),
            "dead_letters": total("autocloud_dead_letters_total"),
            "connected_vehicles": m.get("autocloud_connected_vehicles", 0.0),
        }

    def dead_letters(self) -> dict[str, float]:
        """Dead letters so far by reason (from /metrics)."""
        prefix = 'autocloud_dead_letters_total{reason="'
        return {
            k.removeprefix(prefix).rstrip('"}'): v
            for k, v in self.metrics().items()
            if k.startswith(prefix)
        }

    def settle(self, timeout_s: float = 180.0, quiet_s: float = 2.0) -> bool:
        """Wait until the platform stops receiving messages (its backlog is written)."""
        deadline = time.monotonic() + timeout_s
        last, since = -1.0, time.monotonic()
        while time.monotonic() < deadline:
            now = self.counters()["messages_in"]
            if now != last:
                last, since = now, time.monotonic()
            elif time.monotonic() - since >= quiet_s:
                return True
            time.sleep(0.5)
        return False

    def rss_kb(self) -> int | None:
        return rss_kb(self.pid)

    def log_problems(self) -> dict[str, Any]:
        lines = [
            line
            for line in self.log_path.read_text(errors="replace").splitlines()
            if " WARNING " in line or " ERROR " in line or "Traceback" in line
        ]
        return {"count": len(lines), "last": lines[-5:]}

    def stop(self) -> None:
        self.http.close()
        if self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait(timeout=10)


# -- garbage collection -----------------------------------------------------------------------


class GcTimer:
    """Collections and seconds spent in CPython's cyclic garbage collector, per generation,
    while active (`with GcTimer() as gc_time:`). py-spy shows no collector frames: its time
    lands on whichever Python line allocated the object that triggered a collection."""

    def __init__(self) -> None:
        self.collections = [0, 0, 0]
        self.seconds = [0.0, 0.0, 0.0]
        self._started = 0.0

    def _callback(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
        else:
            generation = info["generation"]
            self.collections[generation] += 1
            self.seconds[generation] += time.perf_counter() - self._started

    def __enter__(self) -> GcTimer:
        gc.callbacks.append(self._callback)
        return self

    def __exit__(self, *_exc: object) -> None:
        gc.callbacks.remove(self._callback)

    def as_dict(self, wall_s: float) -> dict[str, Any]:
        return {
            "collections": self.collections,
            "seconds": [round(s, 3) for s in self.seconds],
            "share_of_wall": round(sum(self.seconds) / wall_s, 3) if wall_s else None,
        }


# -- where the time goes (py-spy) --------------------------------------------------------------

# (group, (function, file) pairs); a sample goes to the first group with a frame in its stack.
SIM_GROUPS: tuple[tuple[str, tuple[tuple[str, str], ...]], ...] = (
    ("routing (OSRM Route)", (("route", "sim/roads.py"),)),
    ("SimVehicle.outgoing (batching, JSON encoding)", (("outgoing", "sim/vehicle.py"),)),
    ("SimVehicle.tick (driving, physics, DTCs, signals)", (("tick", "sim/vehicle.py"),)),
    ("Connection.publish (paho queues the PUBLISH)", (("publish", "sim/transport.py"),)),
    ("gateway: queue the PUBLISH (publish_for)", (("publish_for", "sim/gateway_session.py"),)),
    ("gateway: PUBACKs in", (("on_readable", "sim/gateway_session.py"),)),
    ("gateway: PUBLISHes out", (("on_writable", "sim/gateway_session.py"),)),
    ("paho loop_read (PUBACKs in)", (("loop_read", "paho"),)),
    ("paho loop_write (PUBLISHes out)", (("loop_write", "paho"),)),
    ("paho loop_misc (keepalives, once a second)", (("loop_misc", "paho"),)),
    ("tunnels: reconnect / drop a session", (("reconnect", "sim/transport.py"),)),
    ("selector (epoll wait and bookkeeping)", (("select", "selectors.py"),)),
    ("fleet stats each tick (Fleet._measure, backlog)", (("_measure", "sim/fleet.py"),)),
    ("benchmark bookkeeping (on_tick)", (("on_tick", "bench/sim.py"),)),
    ("Pool.pump, Fleet loop (other)", (("pump", "sim/transport.py"), ("run", "sim/fleet.py"))),
)


def spy(
    pid: int, seconds: float | None, out: Path, *, threads: bool, rate: int = 100
) -> subprocess.Popen[bytes] | None:
    """`py-spy record` of `pid` (raw collapsed stacks, idle samples off), unpinned. With
    `seconds` None it records until sent SIGINT (`stop_spy`)."""
    binary = Path(sys.executable).parent / "py-spy"
    if not binary.exists():
        return None
    command = [
        str(binary),
        "record",
        "--pid",
        str(pid),
        *(["--duration", str(max(1, int(seconds)))] if seconds is not None else []),
        "--rate",
        str(rate),
        "--format",
        "raw",
        "--output",
        str(out),
        "--nonblocking",
    ]
    every_cpu = set(range(os.cpu_count() or 1))
    return subprocess.Popen(
        [*command, "--threads"] if threads else command,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        preexec_fn=lambda: os.sched_setaffinity(0, every_cpu),
    )


def stop_spy(process: subprocess.Popen[bytes] | None, timeout_s: float = 30.0) -> None:
    """End a `spy(..., None, ...)` recording: SIGINT makes py-spy write its output."""
    if process is None or process.poll() is not None:
        return
    process.send_signal(signal.SIGINT)
    try:
        process.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)


def _has(frame: str, function: str, file: str) -> bool:
    """Whether a py-spy frame `Class.function (path:line)` is `function` of `file`."""
    name, _, where = frame.partition(" (")
    return (name == function or name.endswith("." + function)) and file in where


def summarise_simulator(raw: Path) -> dict[str, Any]:
    """Share of the simulator's running samples per group, and its top own-time functions."""
    groups: dict[str, int] = {}
    own: dict[str, int] = {}
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        total += count
        frames = stack.split(";")
        group = "other"
        for name, needles in SIM_GROUPS:
            if any(_has(f, fn, file) for f in frames for fn, file in needles):
                group = name
                break
        groups[group] = groups.get(group, 0) + count
        leaf_name, _, where = frames[-1].partition(" (")
        key = f"{leaf_name} ({where.split(':')[0].rsplit('/', 1)[-1]})"
        own[key] = own.get(key, 0) + count
    if not total:
        return {"samples": 0}

    def top(counts: dict[str, int], n: int) -> list[tuple[str, float]]:
        ranked = sorted(counts.items(), key=lambda kv: kv[1], reverse=True)[:n]
        return [(k, round(100 * v / total, 1)) for k, v in ranked]

    return {"samples": total, "groups_pct": top(groups, 20), "self_pct": top(own, 15)}
