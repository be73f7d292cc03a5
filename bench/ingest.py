"""Ingest benchmark: vehicles -> Mosquitto -> Autocloud -> SQLite / PostgreSQL.

    .venv/bin/python bench/ingest.py                   # both databases, modest sizes
    .venv/bin/python bench/ingest.py --db postgres --messages 400000 --twins 100000,1000000

For each database it starts a private Mosquitto (dynamic security, as the single-node tier
configures it) and the platform as a subprocess (`autocloud up`), registers a fleet, and
measures, with publishers in separate processes (QoS 1, protocol v1, 20 VSS signals a message):

1. sustained signals/s with zero loss (stored count reaches sent x 20, no dead letters, checked
   in the database), from the first publish to the last stored signal;
2. publish-to-twin latency p50/p99 at half that load (live stream, `bench/latency.py`);
3. resident memory of the platform process with 10k, 100k (and, with `--twins`, 1M) twins.

In the same run it measures what the broker alone carries to one QoS 1 subscriber
(`mosquitto_sub`), and what the platform's own MQTT link carries when it does nothing else
(`bench/link_sink.py`), so the platform's number can be read as a fraction of both; the
publishers there are the bench's own lean publisher processes and, labelled, `mosquitto_pub -l`.

Load mode: a *fleet gateway*, few MQTT connections (one per publisher process) publishing for
many VINs, with a dynsec client allowed to publish `vehicles/+/telemetry`. The publisher
processes use a lean socket client (`bench/lean_pub.py`; `--publisher paho` for the paho
client all results before 2026-11-22 11:30 UTC were measured with). Results go to the
terminal (rich) and to `bench/results/ingest-<utc time>.json`.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import platform as pyplatform
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make `bench` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import phases
from bench.broker import (
    RAW_PUBLISHERS,
    Broker,
    RawResult,
    raw_baseline,
    running_broker,
    write_payload_lines,
)
from bench.fleet import CLIENTS, SIGNALS, Gateway, check_signals_valid
from bench.platform_proc import (
    Database,
    Platform,
    migrate_and_add_brands,
    provision,
)
from bench.profile_summary import summarise
from bench.report import print_summary

RESULTS = Path(__file__).resolve().parent / "results"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="bench/ingest.py",
        description=__doc__.split("\n\n")[0] if __doc__ else None,
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--db", default="sqlite,postgres", help="databases to test, comma-separated")
    p.add_argument("--vins", type=int, default=10_000, help="distinct VINs of the load phases")
    p.add_argument(
        "--messages",
        type=int,
        default=100_000,
        help="messages of the throughput phase (rounded to whole rounds over the VINs)",
    )
    p.add_argument("--signals", type=int, default=20, help="signals per message")
    p.add_argument("--publishers", type=int, default=2, help="publisher processes (connections)")
    p.add_argument(
        "--publisher",
        default="lean",
        choices=CLIENTS,
        help="MQTT client of the publisher processes (lean: bench/lean_pub.py; paho)",
    )
    p.add_argument(
        "--rate",
        type=float,
        default=0.0,
        help="throughput phase pace in messages/s; 0 = as fast as the broker acks",
    )
    p.add_argument(
        "--paced-s",
        type=float,
        default=20.0,
        help="length of the paced check at the measured rate (0 = skip)",
    )
    p.add_argument(
        "--paced-steps",
        type=int,
        default=3,
        help="paced checks, each at 80 %% of the previous rate, until one keeps up",
    )
    p.add_argument("--latency-s", type=float, default=20.0, help="length of the latency phase")
    p.add_argument(
        "--latency-rate",
        type=float,
        default=0.0,
        help="messages/s of the latency phase; 0 = half the measured sustained rate",
    )
    p.add_argument(
        "--probes",
        type=int,
        default=1000,
        help="VINs (spread over the fleet) whose twin updates the latency probe follows",
    )
    p.add_argument(
        "--twins",
        default="100000",
        help="twin counts to measure memory at, comma-separated (e.g. 100000,1000000); "
        "empty to skip",
    )
    p.add_argument(
        "--memory-signals",
        type=int,
        default=5,
        help="signals of the one message each extra twin sends",
    )
    p.add_argument(
        "--memory-budget-s",
        type=float,
        default=900.0,
        help="time budget of the memory phase per database; larger counts are skipped",
    )
    p.add_argument(
        "--raw-messages",
        type=int,
        default=100_000,
        help="messages per publisher of the raw broker baseline; 0 to skip",
    )
    p.add_argument(
        "--raw-publishers",
        default="lean,mosquitto_pub",
        help=f"publisher kinds of the raw baseline, comma-separated ({', '.join(RAW_PUBLISHERS)})",
    )
    p.add_argument(
        "--raw-repeats", type=int, default=3, help="repeats of each raw baseline (median is used)"
    )
    p.add_argument(
        "--consumers",
        type=int,
        default=1,
        help="platform processes sharing the load (MQTT 5 shared subscription, one database)",
    )
    p.add_argument("--batch", type=int, default=2000, help="platform ingest_batch")
    p.add_argument("--wait-ms", type=int, default=2, help="platform ingest_wait_ms")
    p.add_argument("--phase-timeout-s", type=float, default=600.0, help="bound of one phase")
    p.add_argument(
        "--profile",
        action="store_true",
        help="record the platform with py-spy during the throughput phase (30 s)",
    )
    p.add_argument(
        "--phases",
        default="throughput,latency,memory",
        help="phases to run, comma-separated (latency without throughput needs --latency-rate)",
    )
    p.add_argument("--pg-db", default="autocloud_bench", help="PostgreSQL database (re-created)")
    p.add_argument("--keep", action="store_true", help="keep the scratch directory and PG db")
    p.add_argument("--out", type=Path, default=None, help="JSON result file")
    args = p.parse_args(argv)
    args.db_kinds = [k.strip() for k in args.db.split(",") if k.strip()]
    for kind in args.db_kinds:
        if kind not in ("sqlite", "postgres"):
            p.error(f"--db: unknown database {kind!r} (sqlite, postgres)")
    args.twin_targets = [int(t) for t in args.twins.split(",") if t.strip()]
    args.phase_list = [x.strip() for x in args.phases.split(",") if x.strip()]
    args.raw_publisher_list = [x.strip() for x in args.raw_publishers.split(",") if x.strip()]
    if unknown := set(args.raw_publisher_list) - set(RAW_PUBLISHERS):
        p.error(f"--raw-publishers: unknown {sorted(unknown)}")
    if unknown := set(args.phase_list) - {"throughput", "latency", "memory"}:
        p.error(f"--phases: unknown {sorted(unknown)}")
    latency_alone = "latency" in args.phase_list and "throughput" not in args.phase_list
    if latency_alone and args.latency_rate <= 0:
        p.error("--phases latency without throughput needs --latency-rate")
    if args.vins < args.publishers or args.probes > args.vins:
        p.error("need --vins >= --publishers and --probes <= --vins")
    return args


def machine_info() -> dict[str, Any]:
    """What the numbers were measured on."""
    cpu = next(
        (
            ln.split(":", 1)[1].strip()
            for ln in Path("/proc/cpuinfo").read_text().splitlines()
            if ln.startswith("model name")
        ),
        "?",
    )
    mem_kb = int(Path("/proc/meminfo").read_text().split()[1])
    os_name = next(
        (
            ln.split("=", 1)[1].strip('"')
            for ln in Path("/etc/os-release").read_text().splitlines()
            if ln.startswith("PRETTY_NAME=")
        ),
        "?",
    )

    def version(command: list[str]) -> str:
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=10, check=False)
        except OSError:
            return "?"
        return (
            (done.stdout or done.stderr).strip().splitlines()[0]
            if (done.stdout or done.stderr)
            else "?"
        )

    return {
        "cpus": len(__import__("os").sched_getaffinity(0)),
        "cpu_model": cpu,
        "memory_gib": round(mem_kb / 1024 / 1024, 1),
        "os": os_name,
        "kernel": pyplatform.release(),
        "python": sys.version.split()[0],
        "mosquitto": version([shutil.which("mosquitto") or "/usr/sbin/mosquitto", "-h"]),
        "postgresql": version(
            ["psql", "-h", "127.0.0.1", "-U", "postgres", "-tAc", "SHOW server_version"]
        ),
        "sqlite": sqlite3.sqlite_version,
    }


def source_digest() -> str:
    """SHA-256 of the platform's source files: which code a result belongs to (others edit
    the tree while benchmarks run, and the bench does not use git)."""
    src = Path(__file__).resolve().parent.parent / "src" / "autocloud"
    h = hashlib.sha256()
    for path in sorted(src.rglob("*.py")):
        h.update(str(path.relative_to(src)).encode() + b"\0" + path.read_bytes())
    return h.hexdigest()[:16]


def run_raw(args: argparse.Namespace, work: Path) -> list[RawResult]:
    """Raw broker baselines on a broker of their own, before any platform runs."""
    if args.raw_messages <= 0:
        return []
    lines = work / "payloads.txt"
    size = write_payload_lines(lines, args.raw_messages, args.signals, args.vins)
    variants = [
        (publisher, subscriber, publishers)
        for publisher in args.raw_publisher_list
        for subscriber, publishers in (("mosquitto_sub", 1), ("mosquitto_sub", 2), ("link", 1))
    ]
    out = []
    for repeat in range(args.raw_repeats):
        for publisher, subscriber, publishers in variants:
            # A fresh broker each time: the link's persistent session would otherwise stay a
            # member of the shared subscription and take half of the next run's messages.
            directory = work / f"mosquitto-raw-{repeat}-{publisher}-{subscriber}-{publishers}"
            with running_broker(directory) as broker:
                result = raw_baseline(
                    broker,
                    lines,
                    args.raw_messages,
                    size,
                    publishers=publishers,
                    subscriber=subscriber,
                    timeout_s=120,
                    publisher=publisher,
                    signals=args.signals,
                    vins=args.vins,
                )
            pub_us = result.us_per_msg(result.publisher_cpu_s)
            print(
                f"  raw {subscriber} <- {publishers} x {publisher}: "
                f"{result.msg_per_s:,.0f} msg/s ({result.received}/{result.messages}); "
                f"CPU/msg: publishers {_us(pub_us)}, "
                f"broker {_us(result.us_per_msg(result.broker_cpu_s))}, "
                f"subscriber {_us(result.us_per_msg(result.subscriber_cpu_s))}"
            )
            out.append(result)
    lines.unlink()
    return out


def _us(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f} µs"


def raw_record(result: RawResult, signals: int) -> dict[str, Any]:
    """A raw baseline run as it goes into the JSON report."""
    return {
        **asdict(result),
        "msg_per_s": round(result.msg_per_s, 1),
        "signals_per_s_equivalent": round(result.msg_per_s * signals, 1),
        "publisher_cpu_us_per_msg": _round(result.us_per_msg(result.publisher_cpu_s)),
        "broker_cpu_us_per_msg": _round(result.us_per_msg(result.broker_cpu_s)),
        "subscriber_cpu_us_per_msg": _round(result.us_per_msg(result.subscriber_cpu_s)),
    }


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


def run_backend(kind: str, args: argparse.Namespace, work: Path) -> dict[str, Any]:
    """The selected phases against one database, with a fresh broker and database."""
    result: dict[str, Any] = {"db": kind, "consumers": args.consumers, "platform_log": []}
    stride = max(1, args.vins // args.probes)
    with running_broker(work / f"mosquitto-{kind}") as broker:
        gateway = broker.add_gateway()
        db = Database.fresh(kind, work, args.pg_db)
        migrate_and_add_brands(db)
        result["provision_s"] = round(provision(db, 0, args.vins, stride, args.vins), 2)

        def start() -> Platform:
            return Platform(
                broker, db, work, batch=args.batch, wait_ms=args.wait_ms, consumers=args.consumers
            )

        platform = start()
        try:
            result["rss_idle_mib"] = round((platform.rss_kb() or 0) / 1024, 1)
            seq = 1
            sustained_msgs = args.latency_rate * 2
            if "throughput" in args.phase_list:
                tp, seq = _throughput(kind, platform, broker, db, gateway, args, work)
                result["throughput"] = tp
                sustained_msgs = tp["msg_per_s"] or 0.0
                result["paced_checks"], seq = _paced_checks(
                    kind, platform, broker, db, gateway, args, sustained_msgs, seq
                )
                sustainable = [
                    c["achieved_msg_per_s"] for c in result["paced_checks"] if c["kept_up"]
                ]
                result["sustained_msg_per_s"] = max(sustainable) if sustainable else None
            if "latency" in args.phase_list:
                half = args.latency_rate or sustained_msgs / 2
                settled = phases.settle_broker(broker)
                print(
                    f"[{kind}] latency: {half:,.0f} msg/s for {args.latency_s:g} s "
                    f"(broker idle after {settled} s)"
                )
                lat = phases.paced(
                    platform,
                    gateway,
                    vins=args.vins,
                    signals=args.signals,
                    publishers=args.publishers,
                    rate=half,
                    duration_s=args.latency_s,
                    seq_start=seq,
                    probe=True,
                    client=args.publisher,
                    machine=phases.Machine(platform, broker, db),
                )
                seq = lat["seq_next"]
                lat["broker_settle_s"] = settled
                result["latency"] = lat
                print(
                    f"[{kind}]   p50 {lat['p50_ms']} ms, p99 {lat['p99_ms']} ms "
                    f"({lat['samples']} samples); achieved {lat['achieved_msg_per_s']} msg/s, "
                    f"drained {lat['drain_s_after_last_publish']} s after the last publish, "
                    f"zero loss {lat['zero_loss']}; cores {lat.get('cores_used')}"
                )
            result["rss_after_load_mib"] = round((platform.rss_kb() or 0) / 1024, 1)
            result["peak_rss_after_load_mib"] = round((platform.hwm_kb() or 0) / 1024, 1)
            if "memory" in args.phase_list:
                # A fresh process: the load phases' backlog (up to 65,535 messages in flight
                # to the platform) leaves a high-water mark in its heap that would hide what
                # the twins themselves cost.
                result["platform_log"].append(platform.log_problems())
                platform.stop()
                platform = start()
                print(f"[{kind}] memory (fresh platform process): twins {args.twin_targets}")
                result["memory"] = phases.memory(
                    platform,
                    db,
                    gateway,
                    have=args.vins,
                    seq_start=seq,
                    targets=args.twin_targets,
                    signals=args.memory_signals,
                    publishers=args.publishers,
                    probe_stride=stride,
                    fleet_vins=args.vins,
                    deadline=time.time() + args.memory_budget_s,
                    client=args.publisher,
                )
                for point in result["memory"]:
                    print(f"[{kind}]   {point['twins']:,} twins: {point.get('rss_mib')} MiB")
            result["broker_rss_mib"] = round((broker.rss_kb() or 0) / 1024, 1)
            result["db_bytes"] = db.size_bytes()
        finally:
            result["platform_log"].append(platform.log_problems())
            platform.stop()
            if not args.keep:
                db.drop()
    if args.profile and "throughput" in args.phase_list:
        result["profile_top"] = summarise_profile(work / f"profile-{kind}.txt", RESULTS, kind)
    return result


def _throughput(
    kind: str,
    platform: Platform,
    broker: Broker,
    db: Database,
    gateway: Gateway,
    args: argparse.Namespace,
    work: Path,
) -> tuple[dict[str, Any], int]:
    print(
        f"[{kind}] throughput: {args.messages:,} messages x {args.signals} signals, "
        f"{args.vins:,} VINs, {args.publishers} {args.publisher} publishers, "
        f"{args.consumers} consumer(s)"
    )
    tp = phases.throughput(
        platform,
        broker,
        db,
        gateway,
        vins=args.vins,
        messages=args.messages,
        signals=args.signals,
        publishers=args.publishers,
        rate=args.rate,
        profile_to=(work / f"profile-{kind}.txt") if args.profile else None,
        timeout_s=args.phase_timeout_s,
        client=args.publisher,
    )
    print(f"[{kind}]   {tp['signals_per_s'] or 0:,.0f} signals/s, zero loss: {tp['zero_loss']}")
    cores = tp["cores_used"]
    print(
        f"[{kind}]   cores used: platform {cores['platform']}, publishers {cores['publishers']} "
        f"({tp['publisher_cpu_us_per_msg']} µs/msg), broker {cores['broker']}, "
        f"db server {cores['db_server']}, other {cores['other']}; machine {cores['machine_busy']}"
    )
    return tp, int(tp["seq_next"])


def _paced_checks(
    kind: str,
    platform: Platform,
    broker: Broker,
    db: Database,
    gateway: Gateway,
    args: argparse.Namespace,
    rate: float,
    seq: int,
) -> tuple[list[dict[str, Any]], int]:
    """Paced runs at the measured rate, stepping down 20 % until one keeps up."""
    checks: list[dict[str, Any]] = []
    for _ in range(args.paced_steps if args.paced_s > 0 else 0):
        settled = phases.settle_broker(broker)
        print(
            f"[{kind}] paced check: {rate:,.0f} msg/s for {args.paced_s:g} s "
            f"(broker idle after {settled} s)"
        )
        check = phases.paced(
            platform,
            gateway,
            vins=args.vins,
            signals=args.signals,
            publishers=args.publishers,
            rate=rate,
            duration_s=args.paced_s,
            seq_start=seq,
            probe=False,
            client=args.publisher,
            machine=phases.Machine(platform, broker, db),
        )
        seq = check["seq_next"]
        check["broker_settle_s"] = settled
        check["kept_up"] = phases.kept_up(check)
        checks.append(check)
        print(
            f"[{kind}]   kept up: {check['kept_up']} (achieved "
            f"{check['achieved_msg_per_s'] or 0:,.0f} msg/s, drained "
            f"{check['drain_s_after_last_publish']} s after the last publish, publishers "
            f"{check['publisher_cpu_us_per_msg']} µs/msg, waited on PUBACKs "
            f"{check['publishers_window_wait_s']} s)"
        )
        if check["kept_up"]:
            break
        rate *= 0.8
    return checks, seq


def summarise_profile(raw: Path, results: Path, kind: str) -> dict[str, Any] | None:
    """Group py-spy's samples (`bench/profile_summary.py`); the raw collapsed stacks are copied
    next to the JSON results (feed them to flamegraph.pl or speedscope)."""
    if not raw.exists():
        return None
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    results.mkdir(parents=True, exist_ok=True)
    kept = results / f"profile-{kind}-{stamp}.txt"
    shutil.copy(raw, kept)
    return {"file": str(kept), **summarise(raw)}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    check_signals_valid(args.signals)
    started = datetime.now(UTC)
    work = Path(tempfile.mkdtemp(prefix="autocloud-bench-"))
    report: dict[str, Any] = {
        "benchmark": "ingest",
        "started": started.isoformat(timespec="seconds"),
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "arguments": {k: v for k, v in vars(args).items() if k not in ("out",)},
        "machine": machine_info(),
        "source_sha256_16": source_digest(),
        "signals": [path for path, _ in SIGNALS[: args.signals]],
        "load_mode": "fleet gateway: one MQTT connection per publisher process, publishing "
        "QoS 1 telemetry for many VINs (dynsec publishClientSend vehicles/+/telemetry)",
        "publisher_client": args.publisher,
        "backends": [],
    }
    try:
        print(f"scratch directory {work}")
        print("raw broker baseline")
        report["raw"] = [raw_record(r, args.signals) for r in run_raw(args, work)]
        for kind in args.db_kinds:
            report["backends"].append(run_backend(kind, args, work))
    finally:
        report["finished"] = datetime.now(UTC).isoformat(timespec="seconds")
        out = args.out or RESULTS / f"ingest-{started.strftime('%Y%m%dT%H%M%SZ')}.json"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(report, indent=2, default=str) + "\n")
        print(f"results written to {out}")
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    print_summary(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
