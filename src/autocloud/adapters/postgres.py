"""PostgreSQL adapter: the single-node and cluster tiers' state and history (psycopg 3)."""

from sqlalchemy import Connection, Engine, create_engine
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.exc import OperationalError

from autocloud.adapters.sql.dialect import Dialect, HistoryTuple
from autocloud.adapters.sql.store import SqlStore
from autocloud.domain.errors import StoreUnavailable

_HISTORY_UPSERT = (
    "INSERT INTO history (vehicle_id, signal_id, ts, num, txt) "
    "SELECT * FROM unnest(%s::integer[], %s::integer[], %s::bigint[], %s::float8[], %s::text[]) "
    "ON CONFLICT (vehicle_id, signal_id, ts) DO UPDATE SET num = EXCLUDED.num, txt = EXCLUDED.txt"
)


def _write_history(conn: Connection, rows: list[HistoryTuple]) -> None:
    # One statement with one array per column: a round trip per batch, not per row.
    columns = tuple(list(column) for column in zip(*rows, strict=True))
    conn.exec_driver_sql(_HISTORY_UPSERT, columns)


DIALECT = Dialect(name="postgresql", insert=insert, write_history=_write_history)


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
