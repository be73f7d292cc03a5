"""PostgreSQL adapter: the single-node and cluster tiers' state and history (psycopg 3)."""

from typing import Any

from sqlalchemy import Connection, Engine, create_engine
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.exc import OperationalError

from autocloud.adapters.sql.dialect import Dialect, HotWrites, RowWriter
from autocloud.adapters.sql.store import SqlStore
from autocloud.domain.errors import StoreUnavailable

_HISTORY_UPSERT = (
    "INSERT INTO history (vehicle_id, signal_id, ts, num, txt) "
    "SELECT * FROM unnest(%s::integer[], %s::integer[], %s::bigint[], %s::float8[], %s::text[]) "
    "ON CONFLICT (vehicle_id, signal_id, ts) DO UPDATE SET num = EXCLUDED.num, txt = EXCLUDED.txt"
)
_TWIN_UPSERT = (
    "INSERT INTO twin AS t (vehicle_id, signal_id, ts, value, num, received_ms) "
    "SELECT * FROM unnest(%s::integer[], %s::integer[], %s::bigint[], %s::text[], "
    "%s::float8[], %s::bigint[]) "
    "ON CONFLICT (vehicle_id, signal_id) DO UPDATE SET ts = EXCLUDED.ts, value = EXCLUDED.value, "
    "num = EXCLUDED.num, received_ms = EXCLUDED.received_ms WHERE EXCLUDED.ts >= t.ts"
)
_WINDOW_UPSERT = (
    "INSERT INTO seq_windows (vehicle_id, sid, top, bits, updated_ms) "
    "SELECT * FROM unnest(%s::integer[], %s::text[], %s::bigint[], %s::bytea[], %s::bigint[]) "
    "ON CONFLICT (vehicle_id, sid) DO UPDATE SET "
    "top = EXCLUDED.top, bits = EXCLUDED.bits, updated_ms = EXCLUDED.updated_ms"
)


def _unnest(sql: str) -> RowWriter:
    """One statement with one array per column: a round trip per batch, not per row."""

    def write(conn: Connection, rows: list[Any]) -> None:
        columns = tuple(list(column) for column in zip(*rows, strict=True))
        conn.exec_driver_sql(sql, columns)

    return write


DIALECT = Dialect(
    name="postgresql",
    insert=insert,
    hot=HotWrites(
        history=_unnest(_HISTORY_UPSERT),
        twin=_unnest(_TWIN_UPSERT),
        windows=_unnest(_WINDOW_UPSERT),
    ),
)


def create(url: str) -> Engine:
    return create_engine(url, pool_size=8, max_overflow=8, pool_pre_ping=True)


def open_store(url: str) -> SqlStore:
    """Open (and migrate) the PostgreSQL database at `url`."""
    store = SqlStore(create(url), DIALECT)
    try:
        store.migrate()
    except OperationalError as exc:
        raise StoreUnavailable(
            f"cannot reach PostgreSQL at {store.engine.url.render_as_string(hide_password=True)}: "
            f"{exc.orig}. Is the server running and the database created?"
        ) from None
    return store
