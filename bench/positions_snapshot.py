"""The fleet map's snapshot read (`GET /v1/fleet/positions`) on a real database.

    .venv/bin/python bench/positions_snapshot.py --vehicles 10000
    .venv/bin/python bench/positions_snapshot.py --vehicles 10000 \\
        --db postgresql+psycopg://postgres@127.0.0.1:5432/postgres

bench/dashboard.py serves the snapshot from a synthetic reader; this measures the real one:
a platform (bootstrap.build) on SQLite in a temporary folder, or on the PostgreSQL given
(in a schema of its own, dropped afterwards), with N vehicles of three brands, each with the
seven map signals in its twin and presence, written directly with SQL (provisioning 10,000
vehicles through the registry would measure password hashing). Then the group admin's and
one brand's snapshot are read through the service (`PositionsService.snapshot`: SQL and
row building), encoded and gzipped as the route does; best and median of `--repeat` reads.
"""

import argparse
import gzip
import json
import random
import statistics
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text

from autocloud.adapters.sql.schema import presence, twin, vehicles
from autocloud.bootstrap import SYSTEM, Platform, build
from autocloud.domain.positions import SIGNALS
from autocloud.settings import load_settings

BRANDS = ("volkswagen", "skoda", "bmw")


def fill(platform: Platform, n: int) -> None:
    """N vehicles with a position, speed, heading, SoC, charging flag and presence."""
    for brand in BRANDS:
        platform.registry.add_brand(SYSTEM, brand, brand.title())
    engine = platform.store.engine
    ids = platform.store.telemetry.signal_ids(path for path, _ in SIGNALS.values())
    rng, now = random.Random(1), int(time.time() * 1000)
    cars = [
        {
            "vin": f"WVWZZZ1K{i:09d}",
            "brand_id": BRANDS[i % 3],
            "model": "ID.3",
            "secret_digest": "0" * 64,
            "created_ms": now,
        }
        for i in range(n)
    ]
    with engine.begin() as conn:
        conn.execute(vehicles.insert(), cars)
        vehicle_ids = [
            row[0] for row in conn.execute(vehicles.select().with_only_columns(vehicles.c.id))
        ]
        values = {
            "lat": lambda: rng.uniform(49.3, 49.5),
            "lon": lambda: rng.uniform(8.6, 8.8),
            "heading": lambda: rng.uniform(0, 360),
            "speed": lambda: rng.uniform(0, 120),
            "soc": lambda: rng.uniform(5, 100),
            "fuel": lambda: rng.uniform(5, 100),
            "charging": lambda: float(rng.random() < 0.1),
        }
        rows: list[dict[str, Any]] = []
        postgres = conn.dialect.name == "postgresql"  # a JSONB column there, Text on SQLite
        for vid in vehicle_ids:
            body = {str(ids[path]): values[name]() for name, (path, _) in SIGNALS.items()}
            meta = {key: [now, now] for key in body}
            rows.append(
                {
                    "vehicle_id": vid,
                    "body": body if postgres else json.dumps(body),
                    "meta": meta if postgres else json.dumps(meta),
                    "newest_ts": now,
                }
            )
        conn.execute(twin.insert(), rows)
        conn.execute(
            presence.insert(),
            [
                {"vehicle_id": vid, "online": True, "since_ms": now, "sid": "s"}
                for vid in vehicle_ids
            ],
        )


def timed(platform: Platform, brand: str | None, repeat: int) -> dict[str, Any]:
    assert platform.positions is not None
    reads, sizes = [], (0, 0)
    for _ in range(repeat):
        started = time.perf_counter()
        body = platform.positions.snapshot(SYSTEM, brand).body()
        zipped = gzip.compress(body, 5)
        reads.append((time.perf_counter() - started) * 1000)
        sizes = (len(body), len(zipped))
    return {
        "brand": brand or "all",
        "vehicles": json.loads(body)["n"],
        "ms_best": round(min(reads)),
        "ms_median": round(statistics.median(reads)),
        "kb_json": round(sizes[0] / 1024),
        "kb_gzip": round(sizes[1] / 1024),
    }


def run(n: int, db: str | None, repeat: int) -> dict[str, Any]:
    schema = None
    if db is not None and db.startswith("postgresql"):
        schema = f"bench_{uuid.uuid4().hex[:8]}"
        with create_engine(db).begin() as conn:
            conn.execute(text(f"CREATE SCHEMA {schema}"))
        db = f"{db}{'&' if '?' in db else '?'}options=-csearch_path%3D{schema}"
    try:
        with tempfile.TemporaryDirectory() as tmp:
            platform = build(load_settings(data_dir=Path(tmp), db=db))
            try:
                fill(platform, n)
                return {
                    "database": platform.store.engine.dialect.name,
                    "results": [timed(platform, None, repeat), timed(platform, "skoda", repeat)],
                }
            finally:
                platform.stop()
    finally:
        if schema is not None and db is not None:
            with create_engine(db.split("?")[0]).begin() as conn:
                conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--vehicles", type=int, default=10_000)
    parser.add_argument("--db", default=None, help="a PostgreSQL URL (default: SQLite)")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    print(json.dumps(run(args.vehicles, args.db, args.repeat), indent=2))


if __name__ == "__main__":
    main()
