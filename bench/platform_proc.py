"""The platform under test: its database, its provisioned fleet, and its process.

The platform runs as a subprocess (`python -m autocloud.entrypoints.cli.main up`), exactly as
an operator starts it, so its resident memory can be read alone from /proc. The bench reads
its progress from `/metrics` (the same counters an operator would graph) and checks the final
numbers in the database itself.

Provisioning writes the `vehicles` rows straight into the database in bulk (COPY on
PostgreSQL, executemany on SQLite): the registry API grants every vehicle a Mosquitto
credential one dynsec command at a time, which at 10k-1M vehicles would dominate the run
(see BENCHMARKS.md); the rows are the ones the registry writes (decoded VIN, secret digest).
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import time
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psycopg

from autocloud.bootstrap import SYSTEM, open_store
from autocloud.domain.clock import SystemClock
from autocloud.domain.vin import decode_vin
from autocloud.services.registry import RegistryService
from bench.broker import Broker, free_port, rss_kb
from bench.fleet import vin_of

FLEET_BRAND = "bench-fleet"
PROBE_BRAND = "bench-probe"
PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
START_TIMEOUT_S = 60.0


@dataclass(frozen=True, slots=True)
class Database:
    """One backend under test: its kind, the URL the platform gets, and how to reach it."""

    kind: str  # "sqlite" or "postgres"
    url: str

    @classmethod
    def fresh(cls, kind: str, work: Path, pg_name: str) -> Database:
        """An empty database of `kind`: a new SQLite file, or a dropped and re-created PG db."""
        if kind == "sqlite":
            path = work / "platform" / "autocloud.db"
            path.parent.mkdir(parents=True, exist_ok=True)
            for leftover in path.parent.glob("autocloud.db*"):
                leftover.unlink()
            return cls(kind, f"sqlite:///{path}")
        if not re.fullmatch(r"[a-z_][a-z0-9_]{0,62}", pg_name):
            raise ValueError(f"unsafe PostgreSQL database name {pg_name!r}")
        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{pg_name}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{pg_name}"')
        return cls(kind, f"postgresql://postgres@127.0.0.1:5432/{pg_name}")

    def drop(self) -> None:
        """Remove a PostgreSQL bench database (SQLite files go with the work directory)."""
        if self.kind == "postgres":
            name = self.url.rsplit("/", 1)[1]
            with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def count(self, sql: str) -> int:
        """One integer from the database (the bench's ground truth, not the metrics)."""
        if self.kind == "sqlite":
            with closing(sqlite3.connect(self.url.removeprefix("sqlite:///"), timeout=30)) as lite:
                return int(lite.execute(sql).fetchone()[0])
        with psycopg.connect(self.url) as conn:
            row = conn.execute(sql).fetchone()
            return int(row[0]) if row else 0

    def backend_pids(self) -> list[int]:
        """PIDs of the PostgreSQL backends connected to this database (none for SQLite)."""
        if self.kind != "postgres":
            return []
        name = self.url.rsplit("/", 1)[1]
        with psycopg.connect(PG_ADMIN) as conn:
            rows = conn.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = %s", (name,)
            ).fetchall()
        return [int(r[0]) for r in rows]

    def size_bytes(self) -> int:
        """On-disk size of the database (SQLite files incl. WAL, or pg_database_size)."""
        if self.kind == "sqlite":
            folder = Path(self.url.removeprefix("sqlite:///")).parent
            return sum(p.stat().st_size for p in folder.glob("autocloud.db*"))
        name = self.url.rsplit("/", 1)[1]
        return self.count(f"SELECT pg_database_size('{name}')")


def migrate_and_add_brands(db: Database) -> None:
    """Create the schema (as the platform does at start) and the two bench brands."""
    settings_url = db.url
    if settings_url.startswith("postgresql://"):
        settings_url = "postgresql+psycopg://" + settings_url.removeprefix("postgresql://")
    store = open_store(settings_url)
    try:
        registry = RegistryService(store.registry, _NoBroker(), SystemClock())
        registry.add_brand(SYSTEM, FLEET_BRAND, "Bench fleet")
        registry.add_brand(SYSTEM, PROBE_BRAND, "Bench latency probes")
    finally:
        store.close()


class _NoBroker:
    """VehicleAccess that refuses: brands need no broker, vehicles are bulk-inserted."""

    def grant(self, vin: str, secret: str) -> None:
        raise RuntimeError("the bench provisions vehicles in bulk")

    def revoke(self, vin: str) -> None:
        raise RuntimeError("the bench provisions vehicles in bulk")


def provision(db: Database, first: int, count: int, probe_stride: int, fleet_vins: int) -> float:
    """Insert vehicles `first..first+count-1` as the registry would; return seconds taken.

    Every `probe_stride`-th VIN of the first `fleet_vins` belongs to the probe brand (the
    latency phase streams only those; spread so that every publisher sends some), all others
    to the fleet brand. Every VIN shares WMI and model-year code, so one
    decode gives manufacturer and model year for all. Written in chunks of 100k rows, so a
    million vehicles never sit in memory at once.
    """
    decoded = decode_vin(vin_of(first))
    now = time.time_ns() // 1_000_000
    columns = "vin, brand_id, model, model_year, manufacturer, secret_digest, created_ms"
    started = time.perf_counter()
    for start in range(first, first + count, 100_000):
        block = [
            (
                vin_of(i),
                PROBE_BRAND if i < fleet_vins and i % probe_stride == 0 else FLEET_BRAND,
                "Bench",
                decoded.model_year,
                decoded.manufacturer,
                hashlib.sha256(f"bench-secret-{i}".encode()).hexdigest(),
                now,
            )
            for i in range(start, min(start + 100_000, first + count))
        ]
        if db.kind == "sqlite":
            lite = sqlite3.connect(db.url.removeprefix("sqlite:///"), timeout=60)
            with lite:  # one transaction
                lite.executemany(
                    f"INSERT INTO vehicles ({columns}) VALUES (?, ?, ?, ?, ?, ?, ?)", block
                )
            lite.close()
        else:
            with (
                psycopg.connect(db.url) as pg,
                pg.cursor() as cur,
                cur.copy(f"COPY vehicles ({columns}) FROM STDIN") as copy,
            ):
                for row in block:
                    copy.write_row(row)
    return time.perf_counter() - started


_METRIC = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? ([-+0-9.eEinfNa]+)$")


def parse_metrics(text: str) -> dict[str, float]:
    """Prometheus text format to {"name{labels}": value} (comments skipped)."""
    found: dict[str, float] = {}
    for line in text.splitlines():
        match = _METRIC.match(line)
        if match:
            found[match.group(1) + (match.group(2) or "")] = float(match.group(3))
    return found


def wait_healthy(
    process: subprocess.Popen[bytes], http: httpx.Client, log_path: Path, timeout_s: float
) -> None:
    """Until the platform answers /healthz; raise with its log's tail if it exits first."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(
                f"the platform exited with {process.returncode}:\n"
                + log_path.read_text(errors="replace")[-3000:]
            )
        try:
            if http.get("/healthz").status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"the platform did not answer /healthz within {timeout_s:g} s")


class PlatformNode:
    """One `autocloud up` against the bench's broker and database, in a subprocess."""

    def __init__(
        self,
        broker: Broker,
        db: Database,
        work: Path,
        *,
        batch: int,
        wait_ms: int,
        consumer: int = 0,
    ) -> None:
        self.api_port = free_port()
        self.api = f"http://127.0.0.1:{self.api_port}"
        self.data_dir = work / "platform"
        self.data_dir.mkdir(parents=True, exist_ok=True)
        env = {
            **os.environ,
            "AUTOCLOUD_BROKER_ADMIN_USER": broker.admin_user,
            "AUTOCLOUD_BROKER_ADMIN_PASSWORD": broker.admin_password,
            "AUTOCLOUD_INGEST_BATCH": str(batch),
            "AUTOCLOUD_INGEST_WAIT_MS": str(wait_ms),
            "AUTOCLOUD_LOG_LEVEL": "warning",
            "AUTOCLOUD_CONSUMER_ID": str(consumer),
        }
        env.pop("AUTOCLOUD_CONFIG", None)
        self.log_path = work / f"platform-{db.kind}-{consumer}.log"
        command = [
            sys.executable,
            "-m",
            "autocloud.entrypoints.cli.main",
            "up",
            "--broker",
            broker.url,
            "--db",
            db.url,
            "--data-dir",
            str(self.data_dir),
            "--api-port",
            str(self.api_port),
        ]
        with self.log_path.open("wb") as log:
            self._process = subprocess.Popen(
                command,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=Path(__file__).resolve().parent.parent,
            )
        self.http = httpx.Client(base_url=self.api, timeout=10)
        self._wait_ready()
        self.token = (self.data_dir / "admin-token").read_text().strip()

    @property
    def pid(self) -> int:
        return self._process.pid

    def _wait_ready(self) -> None:
        wait_healthy(self._process, self.http, self.log_path, START_TIMEOUT_S)

    def metrics(self) -> dict[str, float]:
        return parse_metrics(self.http.get("/metrics").text)

    def stored(self) -> tuple[int, int]:
        """(signals stored, dead letters) so far, from /metrics."""
        m = self.metrics()
        dead = sum(v for k, v in m.items() if k.startswith("autocloud_dead_letters_total"))
        return int(m.get("autocloud_signals_stored_total", 0)), int(dead)

    def rss_kb(self) -> int | None:
        return rss_kb(self.pid)

    def hwm_kb(self) -> int | None:
        return rss_kb(self.pid, "VmHWM")

    def cpu_seconds(self) -> float:
        """User + system CPU time of the platform process so far."""
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        ticks = os.sysconf("SC_CLK_TCK")
        return (int(fields[11]) + int(fields[12])) / ticks

    def stop(self) -> None:
        self.http.close()
        self._process.terminate()
        try:
            self._process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait(timeout=10)


class Platform:
    """The platform under test: one process, or several consumer processes sharing the
    broker's shared subscription and the database (`AUTOCLOUD_CONSUMER_ID` 0..n-1).

    Counters, CPU and memory are summed over the processes; the API of process 0 serves the
    bench's reads, and every process's live stream is followed for latency.
    """

    def __init__(
        self,
        broker: Broker,
        db: Database,
        work: Path,
        *,
        batch: int,
        wait_ms: int,
        consumers: int = 1,
    ) -> None:
        self.nodes: list[PlatformNode] = []
        try:
            for consumer in range(consumers):  # node 0 first: it migrates and writes the token
                self.nodes.append(
                    PlatformNode(broker, db, work, batch=batch, wait_ms=wait_ms, consumer=consumer)
                )
        except BaseException:
            self.stop()
            raise
        self.api = self.nodes[0].api
        self.token = self.nodes[0].token
        self.pid = self.nodes[0].pid

    @property
    def apis(self) -> list[str]:
        return [node.api for node in self.nodes]

    def metrics(self) -> dict[str, float]:
        """Every sample summed over the processes (right for counters and histograms)."""
        total: dict[str, float] = {}
        for node in self.nodes:
            for key, value in node.metrics().items():
                total[key] = total.get(key, 0.0) + value
        return total

    def stored(self) -> tuple[int, int]:
        signals = dead = 0
        for node in self.nodes:
            s, d = node.stored()
            signals, dead = signals + s, dead + d
        return signals, dead

    def rss_kb(self) -> int | None:
        return sum(node.rss_kb() or 0 for node in self.nodes)

    def hwm_kb(self) -> int | None:
        return sum(node.hwm_kb() or 0 for node in self.nodes)

    def cpu_seconds(self) -> float:
        return sum(node.cpu_seconds() for node in self.nodes)

    def stop(self) -> None:
        for node in reversed(self.nodes):
            node.stop()

    def log_problems(self) -> dict[str, Any]:
        """Warnings and errors the processes logged (count and the last few lines)."""
        lines = [
            line
            for node in self.nodes
            if node.log_path.exists()
            for line in node.log_path.read_text(errors="replace").splitlines()
            if " WARNING " in line or " ERROR " in line or "Traceback" in line
        ]
        return {"count": len(lines), "last": lines[-10:]}


def profile(pid: int, seconds: float, out: Path) -> subprocess.Popen[bytes] | None:
    """Start `py-spy record` on the platform (raw collapsed stacks, all threads, idle off)."""
    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not Path(spy).exists():
        return None
    return subprocess.Popen(
        [
            spy,
            "record",
            "--pid",
            str(pid),
            "--duration",
            str(int(seconds)),
            "--rate",
            "200",
            "--format",
            "raw",
            "--output",
            str(out),
            "--threads",
            "--nonblocking",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
