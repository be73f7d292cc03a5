"""Why history is one row per sample, in a rowid table: the layouts' durable write rate on SQLite.

    .venv/bin/python bench/history_layout.py --vehicles 2000 --depth 0,200 --batches 40

Writes the same telemetry (20 numeric signals a message, 500 messages a transaction, vehicles
round-robin, `synchronous=FULL` in WAL mode as the platform runs) into a fresh database in
three layouts, after first filling each vehicle's history `depth` samples deep:

- `per-signal`: the table before migration 0009, one row per (vehicle, signal, ts);
- `per-sample`: migrations 0009-0010, one row per (vehicle, ts) with a JSON body keyed by
  signal id, clustered on that key (WITHOUT ROWID), inserted with the platform's own upsert;
- `per-sample-rowid`: the platform's table since migration 0011, the same rows and upsert in a
  rowid table, so rows append in arrival order and only the key index takes random writes.

With history of some depth, each signal of each vehicle ends on its own B-tree page, so a
per-signal commit dirties (and writes to the WAL) about one page per signal written; a
per-sample commit about one per vehicle, and it splits a full leaf of the whole table to insert
into the middle of it; the rowid table dirties one leaf of the much smaller key index
instead. Only the write is timed (no MQTT, no stages).

`--read-vehicles N` also measures the other side of the trade: one vehicle's hour of 1 Hz
samples (raw, and in 60 one-minute buckets) read back from each per-sample layout after N
vehicles' hour arrived interleaved, as live traffic does (warm OS cache, median of 20 reads).
Results go to bench/results/history-layout-<utc time>.json.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sqlite3
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec

if __package__ in (None, ""):  # run as a script: make `bench` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from autocloud.adapters import sqlite as platform_sqlite

SIGNALS = 20
PER_BATCH = 500
T0 = 1_700_000_000_000

LAYOUTS: dict[str, tuple[str, str]] = {
    "per-signal": (
        "CREATE TABLE history (vehicle_id INTEGER, signal_id INTEGER, ts BIGINT, num FLOAT, "
        "txt TEXT, PRIMARY KEY (vehicle_id, signal_id, ts)) WITHOUT ROWID",
        "INSERT INTO history VALUES (?, ?, ?, ?, ?) ON CONFLICT (vehicle_id, signal_id, ts) "
        "DO UPDATE SET num = excluded.num, txt = excluded.txt",
    ),
    "per-sample": (
        "CREATE TABLE history (vehicle_id INTEGER, ts BIGINT, body TEXT NOT NULL, "
        "PRIMARY KEY (vehicle_id, ts)) WITHOUT ROWID",
        platform_sqlite._HISTORY_UPSERT,
    ),
    "per-sample-rowid": (
        "CREATE TABLE history (vehicle_id INTEGER, ts BIGINT, body TEXT NOT NULL, "
        "PRIMARY KEY (vehicle_id, ts))",
        platform_sqlite._HISTORY_UPSERT,
    ),
}


def rows(layout: str, vehicle: int, ts: int, rng: random.Random) -> list[tuple[Any, ...]]:
    values = [rng.random() * 100 for _ in range(SIGNALS)]
    if layout == "per-signal":
        return [(vehicle, s, ts, v, None) for s, v in enumerate(values)]
    body = msgspec.json.encode({str(s): v for s, v in enumerate(values)}).decode()
    return [(vehicle, ts, body)]


def run(layout: str, vehicles: int, depth: int, batches: int, folder: Path) -> dict[str, Any]:
    path = folder / f"{layout}-{depth}.db"
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    create, insert = LAYOUTS[layout]
    conn.execute(create)
    rng = random.Random(7)
    fill = sorted(
        r
        for v in range(vehicles)
        for k in range(depth)
        for r in rows(layout, v, T0 + k * 1000, rng)
    )
    conn.execute("BEGIN")
    conn.executemany(insert, fill)
    conn.execute("COMMIT")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    del fill
    work: list[list[tuple[Any, ...]]] = []
    sent = 0
    for _ in range(batches):
        batch: list[tuple[Any, ...]] = []
        for _ in range(PER_BATCH):
            vehicle, k = sent % vehicles, depth + sent // vehicles
            batch.extend(rows(layout, vehicle, T0 + k * 1000, rng))
            sent += 1
        work.append(sorted(batch))
    wal_bytes = 0
    cpu, wall = time.process_time(), time.perf_counter()
    for batch in work:
        conn.execute("BEGIN")
        conn.executemany(insert, batch)
        conn.execute("COMMIT")
        wal_bytes = max(wal_bytes, os.path.getsize(f"{path}-wal"))
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    conn.close()
    signals = batches * PER_BATCH * SIGNALS
    return {
        "layout": layout,
        "depth": depth,
        "signals": signals,
        "seconds": round(wall, 3),
        "cpu_seconds": round(cpu, 3),
        "signals_per_s": round(signals / wall),
        "largest_wal_bytes": wal_bytes,
        "db_bytes": path.stat().st_size,
    }


READS = {
    "raw hour": (
        "SELECT ts, body -> '$.\"0\"' FROM history "
        "WHERE vehicle_id = ? AND ts BETWEEN ? AND ? ORDER BY ts"
    ),
    "60 buckets": (
        "SELECT ts / 60000, min(body ->> '$.\"0\"'), avg(body ->> '$.\"0\"'), "
        "max(body ->> '$.\"0\"') FROM history "
        "WHERE vehicle_id = ? AND ts BETWEEN ? AND ? GROUP BY ts / 60000"
    ),
}


def read_cost(layout: str, vehicles: int, folder: Path) -> dict[str, Any]:
    """Median time to read one vehicle's hour after `vehicles` sent an hour, interleaved."""
    path = folder / f"read-{layout}.db"
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute(LAYOUTS[layout][0])
    rng = random.Random(7)
    conn.execute("BEGIN")
    for second in range(3600):
        conn.executemany(
            "INSERT INTO history VALUES (?, ?, ?)",
            [rows(layout, v, T0 + second * 1000, rng)[0] for v in range(vehicles)],
        )
    conn.execute("COMMIT")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    out: dict[str, Any] = {"layout": layout, "vehicles": vehicles}
    for name, query in READS.items():
        times = []
        for vehicle in range(0, vehicles, max(1, vehicles // 20)):
            started = time.perf_counter()
            conn.execute(query, (vehicle, T0, T0 + 3600 * 1000)).fetchall()
            times.append(time.perf_counter() - started)
        out[f"{name} ms"] = round(sorted(times)[len(times) // 2] * 1000, 2)
    conn.close()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vehicles", type=int, default=2000)
    parser.add_argument("--depth", default="0,200", help="samples per vehicle before timing")
    parser.add_argument("--batches", type=int, default=40)
    parser.add_argument("--read-vehicles", type=int, default=0, help="also time reads (0: no)")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    results = []
    reads = []
    with tempfile.TemporaryDirectory() as folder:
        for layout in ("per-sample", "per-sample-rowid") if args.read_vehicles else ():
            reads.append(read_cost(layout, args.read_vehicles, Path(folder)))
            print(reads[-1])
        for depth in (int(d) for d in args.depth.split(",")):
            for layout in LAYOUTS:
                result = run(layout, args.vehicles, depth, args.batches, Path(folder))
                results.append(result)
                print(
                    f"{layout:>16} depth {depth:>4}: {result['signals_per_s']:>9,} signals/s "
                    f"(cpu {result['cpu_seconds']} s of {result['seconds']} s, "
                    f"largest WAL {result['largest_wal_bytes'] / 1e6:.1f} MB)"
                )
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    out = args.out or Path(__file__).parent / "results" / f"history-layout-{stamp}.json"
    record = {
        "command": " ".join(sys.argv),
        "vehicles": args.vehicles,
        "load_avg_1m": os.getloadavg()[0],
        "sqlite": sqlite3.sqlite_version,
        "results": results,
        "reads": reads,
    }
    out.write_text(json.dumps(record, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
