"""In-process cost of the ingest pipeline + commit, without MQTT: signals/s on one core.

Builds an embedded-tier platform (no broker started), registers vehicles, and feeds batches of
protocol-v1 telemetry straight to `IngestService.handle` (stages + transaction), so the number
isolates the platform's own work from the broker and the network.

    .venv/bin/python bench/pipeline.py [--db postgresql+psycopg://postgres@127.0.0.1/bench]
"""

import argparse
import tempfile
import time

import msgspec

from autocloud.bootstrap import SYSTEM, Platform, build
from autocloud.domain.signal_table import SIGNALS
from autocloud.domain.vin import check_digit
from autocloud.ports.link import Inbound
from autocloud.settings import load_settings


def bench_platform(db: str, vehicles: int) -> tuple[Platform, list[str]]:
    """An embedded-tier platform (nothing started) with `vehicles` cars of brand `bench`."""
    platform = build(load_settings(data_dir=tempfile.mkdtemp(), db=db or None))
    platform.registry.add_brand(SYSTEM, "bench", "Bench")
    vins = []
    for i in range(vehicles):
        body = f"WVWZZZ1K0RM{i:06d}"
        vin = body[:8] + check_digit(body) + body[9:]
        platform.registry.add_vehicle(SYSTEM, vin, "bench")
        vins.append(vin)
    return platform, vins


def float_paths(count: int) -> list[str]:
    """The first `count` numeric catalog signals whose range holds the values sent (1.0-7.0)."""
    return [
        s.path
        for s in SIGNALS
        if s.datatype.value in ("float", "double")
        and (s.max is None or s.max >= 50)
        and (s.min is None or s.min <= 1)
    ][:count]


def telemetry_batch(
    paths: list[str], vins: list[str], k: int, size: int, now: int
) -> list[Inbound]:
    """Batch `k` of `size` telemetry messages, one sample of every path each, round-robin."""
    out = []
    for j in range(size):
        seq = k * size + j + 1
        body = {
            "v": 1,
            "sid": "bench",
            "seq": seq,
            "ts": now - 10_000_000 + seq,
            "signals": {p: 1.0 + seq % 7 for p in paths},
        }
        out.append(
            Inbound(f"vehicles/{vins[j % len(vins)]}/telemetry", msgspec.json.encode(body), now)
        )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", default="", help="database URL (default: SQLite in a temp dir)")
    parser.add_argument("--vehicles", type=int, default=200)
    parser.add_argument("--batches", type=int, default=5)
    parser.add_argument("--batch", type=int, default=2000, help="messages per transaction")
    parser.add_argument("--signals", type=int, default=20, help="signals per message")
    args = parser.parse_args()

    platform, vins = bench_platform(args.db, args.vehicles)
    paths = float_paths(args.signals)
    now = int(time.time() * 1000)
    batches = [telemetry_batch(paths, vins, k, args.batch, now) for k in range(args.batches + 1)]
    platform.ingest.handle(batches[0])  # warm caches
    started, cpu_started = time.perf_counter(), time.process_time()
    for b in batches[1:]:
        platform.ingest.process(b)  # as the ingest worker does
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    signals = args.batches * args.batch * len(paths)
    print(
        f"{platform.store.dialect.name}: {signals} signals in {elapsed:.2f} s = "
        f"{signals / elapsed:,.0f} signals/s ({len(paths)} signals a message, "
        f"{args.batch} messages a transaction); this process's CPU: "
        f"{cpu * 1e6 / (args.batches * args.batch):.1f} µs a message "
        f"({signals / cpu:,.0f} signals per CPU second)"
    )
    platform.store.close()


if __name__ == "__main__":
    main()
