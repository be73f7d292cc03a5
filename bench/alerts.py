"""Cost of alert-rule evaluation in the ingest pipeline: throughput with 0 and 100 rules.

Two embedded-tier platforms (no broker started), identical but for their alert rules: one
has none, the other 100 rules of the vehicles' brand on the very signals the messages carry
(so every point is looked at by ~5 rules). Batches of protocol-v1 telemetry go straight to
`IngestService.handle` (all stages + the transaction), alternating between the two
platforms so that both see the same machine conditions; the ratio is the price of the rules.

Rules: 80 quiet ones (thresholds the values never reach: the steady state of a real rule
set), 10 with `for_s=60` whose condition holds now and then (pending trackers come and go),
10 guarded by `Vehicle.IsMoving == false` (guard seeded from the twin, values remembered).

    .venv/bin/python bench/alerts.py [--rounds 5] [--db-a URL --db-b URL]
"""

import argparse
import sys
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make `bench` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from autocloud.bootstrap import SYSTEM, Platform
from bench.pipeline import bench_platform, float_paths, telemetry_batch


def add_rules(p: Platform, paths: list[str], count: int) -> None:
    assert p.alerts is not None
    for n in range(count):
        path = paths[n % len(paths)]
        if n < count * 8 // 10:
            signal = {
                "path": path,
                "op": ">" if n % 2 else "<",
                "threshold": 1e6 if n % 2 else -1e6,
            }
        elif n < count * 9 // 10:
            signal = {"path": path, "op": ">", "threshold": 6.5, "for_s": 60, "hysteresis": 1}
        else:
            guard = {"path": "Vehicle.IsMoving", "op": "==", "value": False}
            signal = {"path": path, "op": "<", "threshold": -5, "while": guard}
        p.alerts.create_rule(
            SYSTEM, brand="bench", name=f"r{n}", severity="info", condition={"signal": signal}
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db-a", default="", help="database of the 0-rule platform")
    parser.add_argument("--db-b", default="", help="database of the 100-rule platform")
    parser.add_argument("--vehicles", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=5, help="measured batches per platform")
    parser.add_argument("--batch", type=int, default=2000, help="messages per transaction")
    parser.add_argument("--signals", type=int, default=20, help="signals per message")
    parser.add_argument("--rules", type=int, default=100)
    args = parser.parse_args()

    paths = float_paths(args.signals)
    bare, vins = bench_platform(args.db_a, args.vehicles)
    ruled, _ = bench_platform(args.db_b, args.vehicles)
    add_rules(ruled, paths, args.rules)
    now = int(time.time() * 1000)

    batches = [telemetry_batch(paths, vins, k, args.batch, now) for k in range(args.rounds + 1)]
    elapsed = {"0 rules": 0.0, f"{args.rules} rules": 0.0}
    busy = dict(elapsed)  # CPU time of this process: less disturbed by other load
    for k, messages in enumerate(batches):
        for name, p in (
            ((f"{args.rules} rules", ruled), ("0 rules", bare))
            if k % 2
            else (
                ("0 rules", bare),
                (f"{args.rules} rules", ruled),
            )
        ):
            started, cpu = time.perf_counter(), time.process_time()
            p.ingest.handle(messages)
            if k:  # the first batch warms caches (signal ids, windows, rule index)
                elapsed[name] += time.perf_counter() - started
                busy[name] += time.process_time() - cpu
    signals = args.rounds * args.batch * len(paths)
    rates = {name: signals / seconds for name, seconds in elapsed.items()}
    cpu_rates = {name: signals / seconds for name, seconds in busy.items()}
    for name, rate in rates.items():
        print(
            f"{bare.store.dialect.name} {name:>10}: {rate:>10,.0f} signals/s wall, "
            f"{cpu_rates[name]:>10,.0f} signals per CPU-second"
        )
    base, ruled_rate = rates["0 rules"], rates[f"{args.rules} rules"]
    assert ruled.alerts is not None
    per_message = (elapsed[f"{args.rules} rules"] - elapsed["0 rules"]) / (args.rounds * args.batch)
    cpu_ratio = cpu_rates[f"{args.rules} rules"] / cpu_rates["0 rules"]
    print(f"CPU throughput with {args.rules} rules: {cpu_ratio:.1%} of without")
    print(
        f"wall throughput with {args.rules} rules: {ruled_rate / base:.1%} of without "
        f"(drop {1 - ruled_rate / base:.1%}); {per_message * 1e6:+.1f} µs a message "
        f"({len(paths)} signals, {args.batch} messages a transaction, {args.rounds} batches each)"
    )
    for name, p in (("0 rules", bare), (f"{args.rules} rules", ruled)):
        spent = {
            stage: p.metrics.registry.get_sample_value(
                "autocloud_ingest_stage_seconds_sum", {"stage": stage}
            )
            or 0.0
            for stage in ("record", "dtc", "alerts", "commit")
        }
        shown = ", ".join(
            f"{k} {v / (len(batches) * args.batch) * 1e6:.1f}" for k, v in spent.items()
        )
        print(f"  {name}: µs a message in stage (all batches): {shown}")
    bare.stop()
    ruled.stop()


if __name__ == "__main__":
    main()
