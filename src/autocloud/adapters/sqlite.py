"""SQLite adapter: the embedded tier's state and history, in one file under data_dir.

WAL journal so the API reads while ingest writes; `synchronous=FULL` because ingest
acknowledges messages to the broker only after commit, and an acknowledged message must
survive a power cut, not just a process crash.
"""

import os
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.dialects.sqlite import insert

from autocloud.adapters.sql.dialect import Dialect, HistoryTuple
from autocloud.adapters.sql.store import SqlStore
from autocloud.domain.errors import ConfigurationError

_HISTORY_UPSERT = (
    "INSERT INTO history (vehicle_id, signal_id, ts, num, txt) VALUES (?, ?, ?, ?, ?) "
    "ON CONFLICT (vehicle_id, signal_id, ts) DO UPDATE SET num = excluded.num, txt = excluded.txt"
)


def _write_history(conn: Connection, rows: list[HistoryTuple]) -> None:
    # Straight to the driver's executemany: SQLAlchemy's per-row parameter processing costs
    # more than SQLite's own work at ingest rates.
    conn.exec_driver_sql(_HISTORY_UPSERT, rows)


DIALECT = Dialect(name="sqlite", insert=insert, write_history=_write_history)


def _pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()


def create(url: str) -> Engine:
    path = url.removeprefix("sqlite:///")
    if path and path != ":memory:":
        folder = Path(path).parent
        try:
            folder.mkdir(mode=0o700, parents=True, exist_ok=True)
            # Location history is personal data: readable by the platform's user only.
            os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
        except OSError as exc:
            raise ConfigurationError(f"cannot create the database {path}: {exc}") from None
    engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 10})
    event.listen(engine, "connect", _pragmas)
    return engine


def open_store(url: str) -> SqlStore:
    """Open (and migrate) the SQLite database at `url` (sqlite:///path)."""
    store = SqlStore(create(url), DIALECT)
    store.migrate()
    return store
