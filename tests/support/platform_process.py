"""`autocloud up` as a child process, for tests that kill it."""

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import httpx

from tests.support.vehicle import eventually


def start_platform(
    data_dir: Path, api_port: int, *flags: str, env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    """Start the platform with `flags` and return once its API answers /healthz."""
    log = (data_dir / "platform.log").open("ab")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "autocloud.entrypoints.cli.main",
            "up",
            "--data-dir",
            str(data_dir),
            "--api-port",
            str(api_port),
            *flags,
        ],
        env={**os.environ, **(env or {})},
        stdout=log,
        stderr=log,
    )

    def healthy() -> bool:
        assert process.poll() is None, (data_dir / "platform.log").read_text()[-3000:]
        try:
            return httpx.get(f"http://127.0.0.1:{api_port}/healthz", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    eventually(healthy, timeout=30)
    return process


def stored(db: Path) -> int:
    """Signal values in the platform's SQLite history (one row holds a sample's signals)."""
    with sqlite3.connect(db, timeout=10) as conn:
        query = "SELECT count(*) FROM history, json_each(history.body)"
        return int(conn.execute(query).fetchone()[0])
