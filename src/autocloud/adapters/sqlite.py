"""SQLite adapter: the embedded tier's state and history, in one file under data_dir.

WAL journal so the API reads while ingest writes; `synchronous=FULL` because an acknowledged
message must survive a power cut, not just a process crash. Ingest's own transactions are the
exception: they commit without the fsync and are acknowledged after a group sync on another
thread (`sqlite_sync.WalSync`).
"""

import os
import sqlite3
import threading
from collections.abc import Collection
from pathlib import Path
from typing import Any, cast

from sqlalchemy import Connection, Engine, case, create_engine, event, func, literal, or_
from sqlalchemy.dialects.sqlite import insert
from sqlalchemy.sql.elements import ColumnElement

from autocloud.adapters.sql.dialect import Dialect, HotWrites, RowWriter, SampleBody, TwinTuple
from autocloud.adapters.sql.store import SqlStore
from autocloud.adapters.sqlite_sync import WalSync
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


def _one_writer_at_a_time(wait_s: float) -> type[sqlite3.Connection]:
    """A sqlite3 connection class whose write transactions take turns on a lock of the process.

    SQLite lets one connection write at a time; another that tries gets SQLITE_BUSY, and its
    busy handler retries with sleeps that grow to 100 ms. Under command load the platform's
    writers (ingest commits, command sends) kept colliding this way: a send waited 46 ms
    (median) for its turn and an ingest commit up to 320 ms, much of it asleep while the
    database was free (BENCHMARKS.md, commands). A connection of this class takes the lock
    before a statement that is not a SELECT and gives it back once no transaction is open
    (after a commit, a rollback, a statement outside a transaction, or at close): the next
    writer of this process goes in at once. Readers never wait (WAL). A writer that waits
    longer than `wait_s` goes on without the lock, to SQLite's own waiting and its error,
    as before: a stuck holder cannot hang the others for good.
    """
    lock = threading.Lock()  # not an RLock: the pool may end a transaction on another thread

    class Cursor(sqlite3.Cursor):
        def execute(self, sql: str, parameters: Any = (), /) -> "Cursor":
            connection: OneWriter = self.connection  # type: ignore[assignment]
            connection.before(sql)
            try:
                return super().execute(sql, parameters)
            finally:
                connection.after()

        def executemany(self, sql: str, seq_of_parameters: Any, /) -> "Cursor":
            connection: OneWriter = self.connection  # type: ignore[assignment]
            connection.before(sql)
            try:
                return super().executemany(sql, seq_of_parameters)
            finally:
                connection.after()

    class OneWriter(sqlite3.Connection):
        holds = False
        relaxed = False  # this transaction commits without fsync (`WalSync.relax`)

        def cursor(self, factory: Any = Cursor) -> Any:
            return super().cursor(factory)

        def before(self, sql: str) -> None:
            if not self.holds and sql.lstrip()[:6].upper() != "SELECT":
                self.holds = lock.acquire(timeout=wait_s)

        def after(self) -> None:
            if self.holds and not self.in_transaction:
                self.holds = False
                lock.release()

        def commit(self) -> None:
            try:
                super().commit()
            finally:
                self.after()

        def rollback(self) -> None:
            try:
                super().rollback()
            finally:
                self.after()

        def close(self) -> None:
            try:
                super().close()
            finally:
                if self.holds:
                    self.holds = False
                    lock.release()

    return OneWriter


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
    connect_args: dict[str, Any] = {"check_same_thread": False, "timeout": 10}
    connect_args["factory"] = _one_writer_at_a_time(10)  # as long as SQLite's busy timeout
    engine = create_engine(url, connect_args=connect_args)
    event.listen(engine, "connect", _pragmas)
    return engine


def open_store(url: str) -> SqlStore:
    """Open (and migrate) the SQLite database at `url` (sqlite:///path)."""
    engine = create(url)
    syncer = WalSync(engine)
    store = SqlStore(engine, DIALECT, deferred=syncer if syncer.active else None)
    store.migrate()
    return store
