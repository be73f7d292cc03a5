"""SQLite adapter: the embedded tier's state and history, in one file under data_dir.

WAL journal so the API reads while ingest writes; `synchronous=FULL` because ingest
acknowledges messages to the broker only after commit, and an acknowledged message must
survive a power cut, not just a process crash.
"""

import os
import sqlite3
from collections.abc import Collection
from pathlib import Path
from typing import Any, cast

from sqlalchemy import Connection, Engine, case, create_engine, event, func, literal, or_
from sqlalchemy.dialects.sqlite import insert
from sqlalchemy.sql.elements import ColumnElement

from autocloud.adapters.sql.dialect import Dialect, HotWrites, RowWriter, SampleBody, TwinTuple
from autocloud.adapters.sql.store import SqlStore
from autocloud.domain.errors import ConfigurationError

_HISTORY_UPSERT = (
    "INSERT INTO history (vehicle_id, ts, body) VALUES (?, ?, ?) ON CONFLICT (vehicle_id, ts) "
    "DO UPDATE SET body = json_patch(history.body, excluded.body)"
)
_TWIN_MERGE = (
    "INSERT INTO twin (vehicle_id, body, meta, newest_ts) VALUES (?, ?, ?, ?) "
    "ON CONFLICT (vehicle_id) DO UPDATE SET body = json_patch(twin.body, excluded.body), "
    "meta = json_patch(twin.meta, excluded.meta), "
    "newest_ts = max(twin.newest_ts, excluded.newest_ts) WHERE ? >= twin.newest_ts"
)
_WINDOW_UPSERT = (
    "INSERT INTO seq_windows (vehicle_id, sid, top, bits, updated_ms) VALUES (?, ?, ?, ?, ?) "
    "ON CONFLICT (vehicle_id, sid) DO UPDATE SET "
    "top = excluded.top, bits = excluded.bits, updated_ms = excluded.updated_ms"
)


def _executemany(sql: str) -> RowWriter:
    def write(conn: Connection, rows: list[Any]) -> None:
        conn.exec_driver_sql(sql, rows)

    return write


def _twin(conn: Connection, rows: list[TwinTuple]) -> Collection[int]:
    """One executemany; SQLite counts the rows it changed, not which: when some were skipped,
    every vehicle of the batch is handed back (merging an applied row again changes nothing)."""
    result = conn.exec_driver_sql(_TWIN_MERGE, rows)
    if result.rowcount == len(rows):
        return ()
    return {row[0] for row in rows}


def _path(signal_id: int) -> str:
    return f'$."{signal_id}"'


def _value_json(body: Any, signal_id: int) -> ColumnElement[Any]:
    return cast(ColumnElement[Any], body.op("->")(literal(_path(signal_id))))


def _number(body: Any, signal_id: int) -> ColumnElement[Any]:
    path = literal(_path(signal_id))
    kind = func.json_type(body, path)
    return case(
        (kind.in_(("integer", "real")), func.json_extract(body, path)),
        (kind == "true", 1.0),
        (kind == "false", 0.0),
    )


def _has_any(body: Any, signal_ids: list[int]) -> ColumnElement[bool]:
    return or_(*(func.json_type(body, literal(_path(i))).is_not(None) for i in signal_ids))


# Straight to sqlite3's executemany with tuples: SQLAlchemy's per-row parameter processing
# costs more than SQLite's own work at ingest rates.
DIALECT = Dialect(
    name="sqlite",
    insert=insert,
    hot=HotWrites(
        history=_executemany(_HISTORY_UPSERT),
        twin=_twin,
        windows=_executemany(_WINDOW_UPSERT),
    ),
    body=SampleBody(value_json=_value_json, number=_number, has_any=_has_any),
)


def _pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()


MIN_SQLITE = (3, 38)  # JSON functions built in, and the -> operator history reads with


def create(url: str) -> Engine:
    if sqlite3.sqlite_version_info < MIN_SQLITE:
        raise ConfigurationError(
            f"this Python's SQLite is {sqlite3.sqlite_version}; Autocloud needs SQLite "
            f"{'.'.join(map(str, MIN_SQLITE))} or newer (its JSON functions and -> operator). "
            "Use a Python built against a newer SQLite, or the PostgreSQL tier."
        )
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
