"""Byte-identity check for simulator optimisations: SHA-256 of everything the cars publish.

    .venv/bin/python bench/sim_digest.py                   # 300 cars, 1,500 simulated s
    .venv/bin/python bench/sim_digest.py --vehicles 50 --seconds 300

Runs the fleet of `Fleet.provision` (generated town, fixed seed and start time, with tunnels,
duplicates, reordering, clock skew and bad input all switched on) through the same per-car
steps as `Fleet._tick` minus the network, and hashes, in publishing order, every message's
topic and payload. Two scenarios: `natural` (cars park between trips, so full and delta
reports, parked reports, charging) and `driving` (every car sent on its next trip at once).
An optimisation that claims to leave the simulation unchanged must leave both digests equal
to those printed before it (they are deterministic: no wall clock is read).
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import tempfile
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make `bench` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from autocloud.sim.fleet import Fleet, FleetConfig
from autocloud.sim.places import Places
from autocloud.sim.roads import Router, build_graph
from autocloud.sim.town import generate_town
from bench.sim_parts import NullProvisioner, keep_driving

START_MS = 1_790_000_000_000  # a fixed simulated clock: the digest must not depend on now


def digest(router: Router, places: Places, vehicles: int, seconds: int, *, driving: bool) -> str:
    """SHA-256 over (topic, payload) of every message, and the count, of one scenario."""
    config = FleetConfig(
        vehicles=vehicles,
        seed=7,
        offline_rate_per_h=2.0,
        duplicate_rate=0.01,
        reorder_rate=0.01,
        bad_input_rate=0.005,
    )
    fleet = Fleet(config, router, places, NullProvisioner())
    fleet.provision()
    cars = fleet.vehicles
    if driving:
        keep_driving(cars)
    h = hashlib.sha256()
    messages = 0
    now_ms = START_MS
    for _ in range(seconds):
        now_ms += 1000
        for car in cars:
            online = car.plan.online(1.0)
            car.tick(1.0, now_ms, router, places)
            for subtopic, payload in car.outgoing(online):
                h.update(f"vehicles/{car.vin}/{subtopic}\n".encode())
                h.update(len(payload).to_bytes(4, "big"))
                h.update(payload)
                messages += 1
        if driving:
            keep_driving(cars)
    h.update(repr(sorted((c.vin, dict(c.bad_sent)) for c in cars)).encode())
    return f"{h.hexdigest()} ({messages} messages)"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--vehicles", type=int, default=300)
    p.add_argument("--seconds", type=int, default=1500)
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="sim-digest-") as tmp:
        town = generate_town(Path(tmp) / "town.osm", seed=7)
        router, places = Router(build_graph(town, Path(tmp) / "osrm")), Places(town)
        for driving in (False, True):
            started = time.perf_counter()
            result = digest(router, places, args.vehicles, args.seconds, driving=driving)
            name = "driving" if driving else "natural"
            print(f"{name}: {result}  [{time.perf_counter() - started:.1f} s]")
    return 0


if __name__ == "__main__":
    sys.exit(main())
