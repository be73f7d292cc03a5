"""How fast can one process write ingest batches durably? The platform's path vs lean ones.

    .venv/bin/python bench/write_paths.py --db sqlite,postgres --messages 20000

The ingest benchmark shows the commit as the largest cost of the platform's ingest thread.
This micro-benchmark writes the same batches (history rows, twin upserts that only move
forward, one replay window per message: what `SqlTelemetry.commit` writes for telemetry) to
a fresh database in three ways, each batch one durable transaction:

- `platform`: `SqlTelemetry.commit` itself, whatever the source tree does at the time (since
  2026-11-22 04:18 UTC: history through the dialect's raw driver path, twin and replay
  windows through SQLAlchemy Core executemany);
- `lean-driver`: the same SQL through the bare driver (sqlite3 `executemany` with tuples;
  on PostgreSQL psycopg `executemany`, which pipelines one statement per row);
- `lean-set` (PostgreSQL only): one statement per table and batch,
  `INSERT … SELECT FROM unnest(arrays) ON CONFLICT …`.

No broker, no MQTT, no pipeline stages: only the write. Results are signals (history rows)
per second; the JSON goes to bench/results/write-paths-<utc time>.json.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec
import psycopg

if __package__ in (None, ""):  # run as a script: make `bench` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from autocloud.adapters.sql.store import SqlStore
from autocloud.bootstrap import open_store
from autocloud.domain.records import Point, WriteBatch
from autocloud.domain.replay import SeqWindow
from bench.fleet import SIGNALS, sid_of
from bench.platform_proc import Database

RESULTS = Path(__file__).resolve().parent / "results"
_json = msgspec.json.encode

Rows = tuple[list[tuple[Any, ...]], list[tuple[Any, ...]], list[tuple[Any, ...]]]


def make_batches(
    messages: int, batch: int, vins: int, signals: int, ids: dict[str, int]
) -> list[WriteBatch]:
    """WriteBatches as the pipeline builds them: round-robin over VINs, a ts per round."""
    now = time.time_ns() // 1_000_000 - 10_000_000
    out: list[WriteBatch] = []
    current = WriteBatch(received_ms=now)
    for n in range(messages):
        vid, seq = n % vins, n // vins
        ts = now + seq
        for path, make in SIGNALS[:signals]:
            point = Point(vid + 1, ids[path], ts, make(vid, seq))
            current.history.append(point)
            current.twin.append(point)
        window = SeqWindow()
        window.offer(seq + 1)
        current.windows[(vid + 1, sid_of(vid))] = window
        if (n + 1) % batch == 0:
            out.append(current)
            current = WriteBatch(received_ms=now)
    if current.history:
        out.append(current)
    return out


def rows_of(batch: WriteBatch) -> Rows:
    """The batch as plain tuples: history, twin, windows (value encodings as the platform's)."""

    def num(value: Any) -> float | None:
        return float(value) if isinstance(value, bool | int | float) else None

    history = [
        (
            p.vehicle_id,
            p.signal_id,
            p.ts,
            num(p.value),
            None if num(p.value) is not None else _json(p.value).decode(),
        )
        for p in batch.history
    ]
    twin = [
        (p.vehicle_id, p.signal_id, p.ts, _json(p.value).decode(), num(p.value), batch.received_ms)
        for p in batch.twin
    ]
    windows = [
        (k[0], k[1], w.top, w.to_bytes(), batch.received_ms) for k, w in batch.windows.items()
    ]
    return history, twin, windows


HISTORY_SQL = (  # as the platform's dialects write history (adapters/sqlite.py, postgres.py)
    "INSERT INTO history (vehicle_id, signal_id, ts, num, txt) VALUES ({}) "
    "ON CONFLICT (vehicle_id, signal_id, ts) DO UPDATE SET num = excluded.num, txt = excluded.txt"
)
TWIN_SQL = (
    "INSERT INTO twin (vehicle_id, signal_id, ts, value, num, received_ms) VALUES ({}) "
    "ON CONFLICT (vehicle_id, signal_id) DO UPDATE SET ts = excluded.ts, value = excluded.value, "
    "num = excluded.num, received_ms = excluded.received_ms WHERE excluded.ts >= twin.ts"
)
WINDOW_SQL = (
    "INSERT INTO seq_windows (vehicle_id, sid, top, bits, updated_ms) VALUES ({}) "
    "ON CONFLICT (vehicle_id, sid) DO UPDATE SET top = excluded.top, bits = excluded.bits, "
    "updated_ms = excluded.updated_ms"
)


def sqlite_driver(db: Database) -> Callable[[WriteBatch], None]:
    """Bare sqlite3 with the platform's pragmas (WAL, synchronous=FULL)."""
    conn = sqlite3.connect(db.url.removeprefix("sqlite:///"), isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")

    def write(batch: WriteBatch) -> None:
        history, twin, windows = rows_of(batch)
        conn.execute("BEGIN")
        conn.executemany(HISTORY_SQL.format("?, ?, ?, ?, ?"), history)
        conn.executemany(TWIN_SQL.format("?, ?, ?, ?, ?, ?"), twin)
        conn.executemany(WINDOW_SQL.format("?, ?, ?, ?, ?"), windows)
        conn.execute("COMMIT")

    return write


def pg_driver(db: Database) -> Callable[[WriteBatch], None]:
    """Bare psycopg executemany (pipeline mode, one statement per row)."""
    conn = psycopg.connect(db.url)

    def write(batch: WriteBatch) -> None:
        history, twin, windows = rows_of(batch)
        with conn.transaction(), conn.cursor() as cur:
            cur.executemany(HISTORY_SQL.format("%s, %s, %s, %s, %s"), history)
            cur.executemany(TWIN_SQL.format("%s, %s, %s, %s, %s, %s"), twin)
            cur.executemany(WINDOW_SQL.format("%s, %s, %s, %s, %s"), windows)

    return write


def pg_set(db: Database) -> Callable[[WriteBatch], None]:
    """One `INSERT … SELECT FROM unnest(…)` per table and batch."""
    conn = psycopg.connect(db.url)
    history_sql = HISTORY_SQL.replace(
        "VALUES ({})",
        "SELECT * FROM unnest(%s::int[], %s::int[], %s::bigint[], %s::float8[], %s::text[])",
    )
    twin_sql = TWIN_SQL.replace(
        "VALUES ({})",
        "SELECT * FROM unnest(%s::int[], %s::int[], %s::bigint[], %s::text[], %s::float8[], "
        "%s::bigint[])",
    )
    window_sql = WINDOW_SQL.replace(
        "VALUES ({})",
        "SELECT * FROM unnest(%s::int[], %s::text[], %s::bigint[], %s::bytea[], %s::bigint[])",
    )

    def columns(rows: list[tuple[Any, ...]]) -> list[list[Any]]:
        return [list(c) for c in zip(*rows, strict=True)]

    def write(batch: WriteBatch) -> None:
        history, twin, windows = rows_of(batch)
        with conn.transaction(), conn.cursor() as cur:
            cur.execute(history_sql, columns(history))
            cur.execute(twin_sql, columns(twin))
            cur.execute(window_sql, columns(windows))

    return write


def platform_path(store: SqlStore) -> Callable[[WriteBatch], None]:
    """The platform's own commit."""
    return store.telemetry.commit


def run(kind: str, strategy: str, args: argparse.Namespace, work: Path) -> dict[str, Any]:
    """One strategy on a fresh database: seconds and signals/s over all batches."""
    db = Database.fresh(kind, work / strategy, args.pg_db)
    url = db.url.replace("postgresql://", "postgresql+psycopg://")
    store = open_store(url)
    try:
        ids = store.telemetry.signal_ids([p for p, _ in SIGNALS[: args.signals]])
        batches = make_batches(args.messages, args.batch, args.vins, args.signals, ids)
        if strategy == "platform":
            write = platform_path(store)
        elif strategy == "lean-driver":
            write = sqlite_driver(db) if kind == "sqlite" else pg_driver(db)
        else:
            write = pg_set(db)
        started = time.perf_counter()
        cpu = time.process_time()
        for batch in batches:
            write(batch)
        seconds = time.perf_counter() - started
        cpu_s = time.process_time() - cpu
        rows = db.count("SELECT count(*) FROM history")
    finally:
        store.close()
        db.drop()
    signals = args.messages * args.signals
    return {
        "db": kind,
        "strategy": strategy,
        "messages": args.messages,
        "batch_messages": args.batch,
        "history_rows": rows,
        "complete": rows == signals,
        "seconds": round(seconds, 2),
        "client_cpu_s": round(cpu_s, 2),
        "signals_per_s": round(signals / seconds),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="bench/write_paths.py", description=__doc__.split("\n\n")[0])
    p.add_argument("--db", default="sqlite,postgres")
    p.add_argument("--messages", type=int, default=20_000)
    p.add_argument("--batch", type=int, default=500, help="messages per transaction")
    p.add_argument("--vins", type=int, default=10_000)
    p.add_argument("--signals", type=int, default=20)
    p.add_argument("--pg-db", default="autocloud_bench_wp")
    args = p.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="autocloud-writes-"))
    results = []
    for kind in [k for k in args.db.split(",") if k]:
        strategies = ["platform", "lean-driver"] + (["lean-set"] if kind == "postgres" else [])
        for strategy in strategies:
            result = run(kind, strategy, args, work)
            print(json.dumps(result))
            results.append(result)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"write-paths-{stamp}.json"
    out.write_text(json.dumps({"arguments": vars(args), "results": results}, indent=2) + "\n")
    print(f"results written to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
