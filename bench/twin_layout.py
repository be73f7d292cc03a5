"""The twin's write alone, two layouts: a row per (vehicle, signal) or a row per vehicle.

Writes what ingest writes for the twin, straight through sqlite3 (WAL, synchronous=FULL, one
transaction per batch): every vehicle sends one message of `--signals` values, `--batch` vehicles
a transaction, round-robin over `--vehicles`, after one warm-up pass that creates every row.
Reports SQLite CPU per message for each layout, interleaved `--rounds` times (the machine is
shared: compare the ratio, not the absolute numbers).

    .venv/bin/python bench/twin_layout.py [--vehicles 10000 --batch 2000 --signals 20]
"""

import argparse
import json
import os
import sqlite3
import tempfile
import time
from collections.abc import Callable
from typing import Any

PER_SIGNAL = (
    "CREATE TABLE twin (vehicle_id INTEGER NOT NULL, signal_id INTEGER NOT NULL, "
    "ts BIGINT NOT NULL, value TEXT NOT NULL, num FLOAT, received_ms BIGINT NOT NULL, "
    "PRIMARY KEY (vehicle_id, signal_id))",
    "INSERT INTO twin VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (vehicle_id, signal_id) DO UPDATE "
    "SET ts = excluded.ts, value = excluded.value, num = excluded.num, "
    "received_ms = excluded.received_ms WHERE excluded.ts >= twin.ts",
)
PER_VEHICLE = (  # as adapters/sqlite.py writes it since migration 0010
    "CREATE TABLE twin (vehicle_id INTEGER PRIMARY KEY, body TEXT NOT NULL, meta TEXT NOT NULL, "
    "newest_ts BIGINT NOT NULL)",
    "INSERT INTO twin (vehicle_id, body, meta, newest_ts) VALUES (?, ?, ?, ?) "
    "ON CONFLICT (vehicle_id) DO UPDATE SET body = json_patch(twin.body, excluded.body), "
    "meta = json_patch(twin.meta, excluded.meta), "
    "newest_ts = max(twin.newest_ts, excluded.newest_ts) WHERE ? >= twin.newest_ts",
)

Rows = Callable[[range, int], list[tuple[Any, ...]]]


def per_signal_rows(signals: int) -> Rows:
    def rows(vehicles: range, ts: int) -> list[tuple[Any, ...]]:
        return [(v, s, ts, repr(1.5 + s), 1.5 + s, ts) for v in vehicles for s in range(signals)]

    return rows


def per_vehicle_rows(signals: int) -> Rows:
    def rows(vehicles: range, ts: int) -> list[tuple[Any, ...]]:
        body = json.dumps({str(s): 1.5 + s for s in range(signals)})
        meta = json.dumps({str(s): [ts, ts] for s in range(signals)})
        return [(v, body, meta, ts, ts) for v in vehicles]

    return rows


def run(schema: str, sql: str, rows: Rows, vehicles: int, batch: int, batches: int) -> float:
    """SQLite CPU seconds per message over `batches` measured transactions."""
    directory = tempfile.mkdtemp(prefix="twin-layout-")
    db = sqlite3.connect(os.path.join(directory, "twin.db"), isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    db.execute(schema)
    warm = vehicles // batch
    cpu = 0.0
    for b in range(warm + batches):
        first = (b * batch) % vehicles
        written = rows(range(first, min(first + batch, vehicles)), b + 1)
        started = time.process_time()
        db.execute("BEGIN")
        db.executemany(sql, written)
        db.execute("COMMIT")
        if b >= warm:
            cpu += time.process_time() - started
    db.close()
    return cpu / (batches * batch)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vehicles", type=int, default=10_000)
    parser.add_argument("--batch", type=int, default=2_000, help="vehicles a transaction")
    parser.add_argument("--signals", type=int, default=20, help="signals a message")
    parser.add_argument("--batches", type=int, default=30, help="measured transactions")
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    layouts = {
        "row per (vehicle, signal)": (*PER_SIGNAL, per_signal_rows(args.signals)),
        "row per vehicle (json_patch)": (*PER_VEHICLE, per_vehicle_rows(args.signals)),
    }
    print(f"load average {os.getloadavg()[0]:.2f}; SQLite {sqlite3.sqlite_version}")
    for _ in range(args.rounds):
        for name, (schema, sql, rows) in layouts.items():
            cost = run(schema, sql, rows, args.vehicles, args.batch, args.batches)
            print(f"{name:30s} {cost * 1e6:7.1f} us of CPU per {args.signals}-signal message")


if __name__ == "__main__":
    main()
