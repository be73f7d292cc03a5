"""The pure simulation (no network) of `bench/sim.py`, alone: CPU per update of driving cars.

    .venv/bin/python bench/sim_pure.py                       # 2,000 cars, 15 simulated s
    .venv/bin/python bench/sim_pure.py --vehicles 2000 --seconds 15 --repeats 3

For quick A/B comparisons of simulator changes: run it alternately with the code before and
after (`PYTHONPATH=<copy>/src` for the old one) under the bench lock, and compare the CPU
µs per update it prints. Every car drives (as `bench/sim.py`'s `driving` scenario), after an
unmeasured warm-up of 5 s in which every car routes its first trip; pinned to CPU 0.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make `bench` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from autocloud.sim.places import Places
from autocloud.sim.roads import build_graph
from autocloud.sim.town import generate_town
from bench.sim_parts import TimedRouter, fleet_vehicles, pure_run, warm_routes

START_MS = 1_790_000_000_000


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--vehicles", type=int, default=2000)
    p.add_argument("--seconds", type=int, default=15)
    p.add_argument("--repeats", type=int, default=1)
    p.add_argument("--seed", type=int, default=7)
    args = p.parse_args(argv)
    os.sched_setaffinity(0, {0})
    with tempfile.TemporaryDirectory(prefix="sim-pure-") as tmp:
        town = generate_town(Path(tmp) / "town.osm", seed=args.seed)
        router, places = TimedRouter(build_graph(town, Path(tmp) / "osrm")), Places(town)
        warm_routes(router, places)
        cars = fleet_vehicles(router, places, args.vehicles, args.seed, driving=True)
        start = START_MS
        pure_run(router, places, cars, 5, scenario="warm-up", driving=True, start_ms=start)
        start += 5000
        for repeat in range(args.repeats):
            r = pure_run(
                router,
                places,
                cars,
                args.seconds,
                scenario="driving",
                driving=True,
                start_ms=start,
                sample_every=args.seconds,
            )
            start += args.seconds * 1000
            print(
                f"run {repeat + 1}: {r.updates / r.wall_s:,.0f} updates/s, "
                f"{r.cpu_s / r.updates * 1e6:.1f} µs CPU per update "
                f"({r.cpu_s / r.wall_s:.0%} of a core), {r.messages:,} messages"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
