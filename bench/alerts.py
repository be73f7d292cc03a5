"""Cost of alert-rule evaluation in the ingest pipeline: throughput with 0 and 100 rules.

Two embedded-tier platforms (no broker started), identical but for their alert rules: one
has none, the other 100 rules of the vehicles' brand on the very signals the messages carry
(so every point is looked at by ~5 rules). Batches of protocol-v1 telemetry go straight to
`IngestService.process` (all stages + the transaction, as the ingest worker runs them),
alternating between the two platforms so that both see the same machine conditions; the
ratio is the price of the rules.

Rules: 80 quiet ones (thresholds the values never reach: the steady state of a real rule
set), 10 with `for_s=60` whose condition holds now and then (pending trackers come and go),
10 guarded by `Vehicle.IsMoving == false` (guard seeded from the twin, values remembered).

Besides the throughput ratio it prints the alert rules' own cost a message, which the
ratio's noise hides: the `alerts` stage's timer and the pending-wait writer
(`adapters/sql/alerts.write_pending_changes`, timed here) over the measured batches, against
the 0-rule platform's time a message.

`--steady` puts the `for_s` rules' threshold out of reach too: no wait ever starts, the steady
state of a quiet rule set. `--stage-only` measures the stage alone, steadier still: the
batches go through the pipeline (without the stage) and are committed once, then a fresh
stage is fed them directly, best CPU time of `--repeat` passes.

    .venv/bin/python bench/alerts.py [--rounds 5] [--db-a URL --db-b URL]
    .venv/bin/python bench/alerts.py --stage-only [--rounds 10] [--repeat 5] [--steady]
"""

import argparse
import sys
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make `bench` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from collections.abc import Sequence
from typing import Any

from autocloud.adapters.sql import alerts as sql_alerts
from autocloud.bootstrap import SYSTEM, Platform, freeze_startup_heap
from autocloud.domain.alerts import PendingChanges
from autocloud.services.alert_stage import AlertStage
from bench.pipeline import bench_platform, float_paths, telemetry_batch

STAGES = (
    "envelope",
    "decode",
    "authorise",
    "dedupe",
    "validate",
    "record",
    "dtc",
    "alerts",
    "commit",
)
WRITER = {"s": 0.0, "rows": 0.0, "on": 0.0}  # the pending-wait writer, measured batches only


def _timed_writer() -> None:
    """Time `write_pending_changes` (read when a store is built: call before building)."""
    real = sql_alerts.write_pending_changes

    def timed(conn: Any, dialect: Any, batches: Sequence[PendingChanges]) -> None:
        start = time.perf_counter()
        real(conn, dialect, batches)
        if WRITER["on"]:
            WRITER["s"] += time.perf_counter() - start
            WRITER["rows"] += sum(len(b.started) + len(b.ended) for b in batches)

    sql_alerts.write_pending_changes = timed


def _stage_s(p: Platform, stage: str) -> float:
    value = p.metrics.registry.get_sample_value(
        "autocloud_ingest_stage_seconds_sum", {"stage": stage}
    )
    return value or 0.0


def add_rules(p: Platform, paths: list[str], count: int, *, steady: bool = False) -> None:
    """The rules above; `steady`: the `for_s` ones' threshold out of reach too (no wait)."""
    assert p.alerts is not None
    for n in range(count):
        path = paths[n % len(paths)]
        signal: dict[str, Any]
        if n < count * 8 // 10:
            signal = {
                "path": path,
                "op": ">" if n % 2 else "<",
                "threshold": 1e6 if n % 2 else -1e6,
            }
        elif n < count * 9 // 10:
            edge = 1e6 if steady else 6.5
            signal = {"path": path, "op": ">", "threshold": edge, "for_s": 60, "hysteresis": 1}
        else:
            guard = {"path": "Vehicle.IsMoving", "op": "==", "value": False}
            signal = {"path": path, "op": "<", "threshold": -5, "while": guard}
        p.alerts.create_rule(
            SYSTEM, brand="bench", name=f"r{n}", severity="info", condition={"signal": signal}
        )


def stage_only(args: argparse.Namespace, paths: list[str]) -> None:
    """The alert stage's own CPU time a message, fed prepared batches directly."""
    p, vins = bench_platform(args.db_b, args.vehicles)
    add_rules(p, paths, args.rules, steady=args.steady)
    stages = p.ingest.pipeline.stages
    del stages[[name for name, _ in stages].index("alerts")]
    now = int(time.time() * 1000)
    prepared = []
    for k in range(args.rounds + 1):
        batch = p.ingest.pipeline.run(telemetry_batch(paths, vins, k, args.batch, now), now)
        p.store.telemetry.commit(batch.out)  # the twin as ingest leaves it (guard seeding)
        prepared.append((batch, list(batch.out.extra)))
    assert p.alerts is not None
    passes = []
    for _ in range(args.repeat):
        stage = AlertStage(p.store.alerts, p.hub)
        stage.restore()
        spent = 0.0
        for k, (batch, extra) in enumerate(prepared):
            batch.out.extra[:] = extra
            cpu = time.process_time()
            stage(batch)
            if k:  # the first batch warms the path cache and seeds the guards
                spent += time.process_time() - cpu
            stage.committed(batch)
        passes.append(spent / (args.rounds * args.batch) * 1e6)
    shown = ", ".join(f"{x:.2f}" for x in passes)
    print(
        f"alerts stage alone, {args.rules} rules: {min(passes):.2f} µs (CPU) a message, best of "
        f"{args.repeat} passes ({shown}); {len(paths)} signals, {args.batch} messages a batch, "
        f"{args.rounds} batches"
    )
    p.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db-a", default="", help="database of the 0-rule platform")
    parser.add_argument("--db-b", default="", help="database of the 100-rule platform")
    parser.add_argument("--vehicles", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=5, help="measured batches per platform")
    parser.add_argument("--batch", type=int, default=2000, help="messages per transaction")
    parser.add_argument("--signals", type=int, default=20, help="signals per message")
    parser.add_argument("--rules", type=int, default=100)
    parser.add_argument("--stage-only", action="store_true", help="time the stage alone")
    parser.add_argument("--repeat", type=int, default=5, help="passes of --stage-only")
    parser.add_argument(
        "--steady", action="store_true", help="no wait ever starts (every rule quiet)"
    )
    args = parser.parse_args()

    paths = float_paths(args.signals)
    if args.stage_only:
        stage_only(args, paths)
        return
    _timed_writer()
    bare, vins = bench_platform(args.db_a, args.vehicles)
    ruled, _ = bench_platform(args.db_b, args.vehicles)
    add_rules(ruled, paths, args.rules, steady=args.steady)
    now = int(time.time() * 1000)

    batches = [telemetry_batch(paths, vins, k, args.batch, now) for k in range(args.rounds + 1)]
    # As a started platform does (`Platform.start`): what start-up built, and here the prepared
    # batches too, is left out of full collections, which would walk it again and again.
    freeze_startup_heap()
    elapsed = {"0 rules": 0.0, f"{args.rules} rules": 0.0}
    busy = dict(elapsed)  # CPU time of this process: less disturbed by other load
    stage_before = 0.0
    for k, messages in enumerate(batches):
        if k == 1:  # after the warm-up batch
            stage_before, WRITER["on"] = _stage_s(ruled, "alerts"), 1.0
        for name, p in (
            ((f"{args.rules} rules", ruled), ("0 rules", bare))
            if k % 2
            else (
                ("0 rules", bare),
                (f"{args.rules} rules", ruled),
            )
        ):
            started, cpu = time.perf_counter(), time.process_time()
            p.ingest.process(messages)
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
    measured = args.rounds * args.batch
    in_stage = (_stage_s(ruled, "alerts") - stage_before) / measured * 1e6
    writer = WRITER["s"] / measured * 1e6
    pipeline = elapsed["0 rules"] / measured * 1e6
    print(
        f"alert cost a message (measured batches): stage {in_stage:.2f} µs + pending-wait "
        f"writer {writer:.2f} µs ({WRITER['rows'] / args.rounds:.0f} rows a batch) = "
        f"{in_stage + writer:.1f} µs, {(in_stage + writer) / pipeline:.1%} of the 0-rule "
        f"pipeline's {pipeline:.0f} µs a message (wall)"
    )
    for name, p in (("0 rules", bare), (f"{args.rules} rules", ruled)):
        spent = {stage: _stage_s(p, stage) for stage in STAGES}
        shown = ", ".join(
            f"{k} {v / (len(batches) * args.batch) * 1e6:.1f}" for k, v in spent.items()
        )
        print(f"  {name}: µs a message in stage (all batches): {shown}")
    bare.stop()
    ruled.stop()


if __name__ == "__main__":
    main()
