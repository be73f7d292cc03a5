"""Load mode of `bench/sim.py`: vehicle-updates per second through fleet-gateway connections.

One update = one car advanced one simulated second, its messages built and handed to paho
(`LoadFleet._tick`), published on the gateway's connection. The fleet runs at speed-up 0 (as
fast as the broker acknowledges, back-dated so it ends now), so updates per second of wall
time is the simulator's rate on its core (pinned to CPU 0; broker and platform on CPU 1).

Targets:
- `broker`: a private Mosquitto with dynamic security, the gateways created in dynsec
  directly (no platform): what the simulator can push on one core. Also measures how long
  dynsec takes to grant a gateway 10,000 VINs (`MosquittoDynsec.set_gateway`).
- `platform`: the single-node tier (that Mosquitto plus `autocloud up` on SQLite consuming);
  cars and gateways provisioned through the API, as `autocloud sim --mode load` does.
  Reports whether the platform kept up and the CPU share of simulator, broker and platform.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import time
from pathlib import Path
from typing import Any

from autocloud.adapters.mosquitto import MosquittoDynsec
from autocloud.domain.errors import ConfigurationError
from autocloud.domain.secrets import new_secret
from autocloud.entrypoints.cli.sim_cmd import ApiGatewayProvisioner
from autocloud.sim.fleet import FleetConfig, fleet_vin
from autocloud.sim.load import LoadFleet
from autocloud.sim.places import Places
from bench.broker import Broker, running_broker
from bench.sim_parts import (
    CachingProvisioner,
    GcTimer,
    NullProvisioner,
    PlatformProcess,
    TimedRouter,
    busy_between,
    cpu_seconds,
    cpu_times,
    keep_driving,
    pin,
    spy,
    stop_spy,
    summarise_simulator,
    wait_quiet,
)

PLATFORM_CPU = 1
WARMUP_S = 5


class DynsecGateways:
    """Gateways straight in dynsec (no platform): the `GatewayProvisioner` of `broker` runs."""

    def __init__(self, dynsec: MosquittoDynsec) -> None:
        self._dynsec = dynsec
        self._secrets: dict[str, str] = {}

    def gateway(self, brand: str, name: str) -> tuple[str, str]:
        login, secret = f"gw.{brand}.{name}", new_secret()
        self._dynsec.set_gateway(login, secret, frozenset())
        self._secrets[login] = secret
        return login, secret

    def grant(self, login: str, vins: list[str]) -> None:
        self._dynsec.set_gateway(login, None, frozenset(vins))


def admin(broker: Broker, timeout: float, wait_s: float = 10.0) -> MosquittoDynsec:
    """The dynsec admin session. A freshly started Mosquitto listens a moment before its
    dynsec plugin knows the admin (it then refuses the login): try again for `wait_s`."""
    deadline = time.monotonic() + wait_s
    while True:
        try:
            return MosquittoDynsec(
                broker.host, broker.port, broker.admin_user, broker.admin_password, timeout=timeout
            )
        except ConfigurationError:
            if time.monotonic() >= deadline:
                raise
            time.sleep(0.5)


def grant_timing(broker: Broker, vins: int) -> dict[str, Any]:
    """Seconds for dynsec to create a gateway, grant it `vins` VINs, and revoke one of them."""
    all_vins = [fleet_vin("WVW", 500_000 + i) for i in range(vins)]
    with admin(broker, timeout=120) as dynsec:
        t0 = time.perf_counter()
        dynsec.set_gateway("gw.bench.grant-test", new_secret(), frozenset())
        t1 = time.perf_counter()
        dynsec.set_gateway("gw.bench.grant-test", None, frozenset(all_vins))
        t2 = time.perf_counter()
        dynsec.set_gateway("gw.bench.grant-test", None, frozenset(all_vins[1:]))
        t3 = time.perf_counter()
        dynsec.remove_gateway("gw.bench.grant-test")
        t4 = time.perf_counter()
    return {
        "vins": vins,
        "create_s": round(t1 - t0, 3),
        "grant_all_s": round(t2 - t1, 3),
        "revoke_one_s": round(t3 - t2, 3),
        "delete_s": round(t4 - t3, 3),
    }


def _run(
    fleet: LoadFleet, mqtt: tuple[str, int], pids: dict[str, int | None], args: argparse.Namespace
) -> dict[str, Any]:
    """Connect, drive `--load-s` simulated seconds at speed-up 0, wait for every PUBACK."""
    fleet.connect(*mqtt, timeout_s=60)
    for car in fleet.vehicles:
        car.park_left_s = 0.0
    fleet.pool.until(lambda: fleet.backlog == 0, 30)  # the online announcements
    # Unmeasured warm-up: every car routes its first trip (OSRM), as in the pure runs.
    measured_s, fleet.config.duration_s = fleet.config.duration_s, float(WARMUP_S)
    fleet.run(on_tick=lambda _s: keep_driving(fleet.vehicles))
    fleet.config.duration_s = measured_s
    quiet = wait_quiet([p for p in pids.values() if p], args.quiet_wait_s)
    cpu0 = {k: cpu_seconds(p) if p else None for k, p in pids.items()}
    machine0 = cpu_times()
    sent0, ticks0 = fleet.stats.sent, fleet.stats.ticks
    target = "platform" if "platform" in pids else "broker"
    raw = args.spy_dir / f"sim-spy-load-{target}-{args.stamp}-{time.strftime('%H%M%S')}.txt"
    spying = spy(os.getpid(), None, raw, threads=False, rate=500) if args.spy else None
    times0 = os.times()
    t0 = time.perf_counter()
    with GcTimer() as gc_time:
        stats = fleet.run(on_tick=lambda _s: keep_driving(fleet.vehicles))
    wall = time.perf_counter() - t0
    times = os.times()
    stop_spy(spying)
    cpu = {k: round((cpu_seconds(p) or 0.0) - (cpu0[k] or 0.0), 2) for k, p in pids.items() if p}
    busy = busy_between(machine0, cpu_times())["cpu"]
    ticks = stats.ticks - ticks0  # without the warm-up
    updates = len(fleet.vehicles) * ticks
    fleet.close()
    total = sum(cpu.values()) or 1.0
    return {
        "vehicles": len(fleet.vehicles),
        "gateways": len(fleet.gateways),
        "sim_seconds": ticks,
        "wall_s": round(wall, 2),
        "updates_per_s": round(updates / wall),
        "messages": stats.sent - sent0,
        "messages_per_s": round((stats.sent - sent0) / wall),
        "acked_all": fleet.backlog == 0,
        "cpu_seconds": cpu,
        "cpu_pct_of_core": {k: round(100 * v / wall, 1) for k, v in cpu.items()},
        "cpu_share": {k: round(v / total, 3) for k, v in cpu.items()},
        "simulator_cpu_share_of_wall": round(cpu.get("simulator", 0.0) / wall, 3),
        "others_pct_of_core": round(100 * max(0.0, busy - sum(cpu.values())) / wall, 1),
        "quiet_before": quiet,
        "gc": gc_time.as_dict(wall),
        "simulator_user_s": round(times.user - times0.user, 2),  # Python and libraries
        "simulator_system_s": round(times.system - times0.system, 2),  # kernel: TCP sends
        "simulator_us_per_update": round(
            (times.user - times0.user + times.system - times0.system) / updates * 1e6, 1
        ),
        **({"py_spy": summarise_simulator(raw), "py_spy_raw": str(raw)} if spying else {}),
    }


def load_target(
    args: argparse.Namespace, target: str, router: TimedRouter, places: Places, work: Path
) -> dict[str, Any]:
    folder = work / f"load-{target}"
    (folder / "broker").mkdir(parents=True, exist_ok=True)
    cpus = None if args.no_pin else {PLATFORM_CPU}
    config = FleetConfig(
        vehicles=args.load_vehicles, seed=args.seed, duration_s=args.load_s, speedup=0.0
    )
    out: dict[str, Any] = {"target": target}
    with contextlib.ExitStack() as stack:
        broker = stack.enter_context(running_broker(folder / "broker"))
        if cpus:
            pin(broker.pid, cpus)
        pids: dict[str, int | None] = {"simulator": os.getpid(), "broker": broker.pid}
        if target == "broker":
            if args.grant_vins:
                out["dynsec_grant"] = grant_timing(broker, args.grant_vins)
            dynsec = stack.enter_context(admin(broker, timeout=60))
            dynsec.ensure_platform_client("bench-platform", new_secret())  # default deny
            fleet = LoadFleet(
                config,
                router,
                places,
                NullProvisioner(),
                DynsecGateways(dynsec),
                gateway_connections=args.load_gateways,
            )
            t0 = time.perf_counter()
            fleet.provision()
            out["provision_s"] = round(time.perf_counter() - t0, 2)
            out.update(_run(fleet, (broker.host, broker.port), pids, args))
            return out
        platform = PlatformProcess(folder, broker=broker, cpus=cpus)
        stack.callback(platform.stop)
        pids["platform"] = platform.pid
        api = platform.api_client()
        fleet = LoadFleet(
            config,
            router,
            places,
            CachingProvisioner(api),
            ApiGatewayProvisioner(api),
            gateway_connections=args.load_gateways,
        )
        t0 = time.perf_counter()
        fleet.provision()
        out["provision_s"] = round(time.perf_counter() - t0, 2)
        counters0 = platform.counters()
        out.update(_run(fleet, platform.mqtt, pids, args))
        t1 = time.monotonic()
        out["platform_settled"] = platform.settle(args.drain_timeout_s)
        out["platform_catch_up_s"] = round(time.monotonic() - t1, 1)
        final = platform.counters()
        out["platform_data_messages_in"] = final["data_messages_in"] - counters0["data_messages_in"]
        out["platform_dead_letters"] = final["dead_letters"] - counters0["dead_letters"]
        out["platform_log_problems"] = platform.log_problems()
    return out


def load_phase(
    args: argparse.Namespace, router: TimedRouter, places: Places, work: Path
) -> list[dict[str, Any]]:
    """Each load target `--load-runs` times (a run whose others_pct_of_core is high again)."""
    runs = []
    for target in args.load_target_list:
        for attempt in range(1 + args.retries):
            run = load_target(args, target, router, places, work)
            run["attempt"] = attempt + 1
            if run.get("others_pct_of_core", 0.0) <= 20.0 or attempt == args.retries:
                break
        runs.append(run)
    return runs
