"""PostgreSQL adapter: the single-node and cluster tiers' state and history (psycopg 3)."""

from collections.abc import Collection
from typing import Any

from sqlalchemy import (
    Boolean,
    Connection,
    Engine,
    Float,
    Text,
    case,
    cast,
    create_engine,
    func,
    literal,
)
from sqlalchemy.dialects.postgresql import array, insert
from sqlalchemy.exc import OperationalError
from sqlalchemy.sql.elements import ColumnElement

from autocloud.adapters.sql.dialect import Dialect, HotWrites, RowWriter, SampleBody, TwinTuple
from autocloud.adapters.sql.store import SqlStore
from autocloud.domain.errors import StoreUnavailable

_HISTORY_UPSERT = (
    "INSERT INTO history AS h (vehicle_id, ts, body) "
    "SELECT v, t, b::jsonb FROM unnest(%s::integer[], %s::bigint[], %s::text[]) AS u(v, t, b) "
    "ON CONFLICT (vehicle_id, ts) DO UPDATE SET body = h.body || EXCLUDED.body"
)
# The guard reads the oldest ts of the new signals from `meta`; RETURNING names the rows
# written (inserted or merged), so the skipped ones are known exactly.
_TWIN_MERGE = (
    "INSERT INTO twin AS t (vehicle_id, body, meta, newest_ts) "
    "SELECT v, b::jsonb, m::jsonb, n FROM unnest(%s::integer[], %s::text[], %s::text[], "
    "%s::bigint[], %s::bigint[]) AS u(v, b, m, n, o) "
    "ON CONFLICT (vehicle_id) DO UPDATE SET body = t.body || EXCLUDED.body, "
    "meta = t.meta || EXCLUDED.meta, newest_ts = GREATEST(t.newest_ts, EXCLUDED.newest_ts) "
    "WHERE (SELECT min((e.value ->> 0)::bigint) FROM jsonb_each(EXCLUDED.meta) AS e) "
    ">= t.newest_ts RETURNING t.vehicle_id"
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


def _twin(conn: Connection, rows: list[TwinTuple]) -> Collection[int]:
    columns = tuple(list(column) for column in zip(*rows, strict=True))
    written = {row[0] for row in conn.exec_driver_sql(_TWIN_MERGE, columns)}
    return {row[0] for row in rows} - written


def _key(signal_id: int) -> ColumnElement[str]:
    return cast(literal(str(signal_id)), Text)


def _value_json(body: Any, signal_id: int) -> ColumnElement[Any]:
    return cast(body.op("->")(_key(signal_id)), Text)


def _number(body: Any, signal_id: int) -> ColumnElement[Any]:
    value = body.op("->")(_key(signal_id))
    kind = func.jsonb_typeof(value)
    return case(
        (kind == "number", cast(body.op("->>")(_key(signal_id)), Float)),
        (kind == "boolean", case((cast(value, Boolean), 1.0), else_=0.0)),
    )


def _has_any(body: Any, signal_ids: list[int]) -> ColumnElement[bool]:
    keys = array([str(i) for i in signal_ids], type_=Text)
    has: ColumnElement[bool] = body.op("?|", return_type=Boolean)(keys)
    return has


DIALECT = Dialect(
    name="postgresql",
    insert=insert,
    hot=HotWrites(
        history=_unnest(_HISTORY_UPSERT),
        twin=_twin,
        windows=_unnest(_WINDOW_UPSERT),
    ),
    body=SampleBody(value_json=_value_json, number=_number, has_any=_has_any),
)


def create(url: str) -> Engine:
    # No `pool_pre_ping`: it cost a round trip on every checkout, several per API call
    # (10 % of the platform's samples under command load, BENCHMARKS.md). A connection the
    # server dropped fails its statement once, as a disconnect: SQLAlchemy then discards
    # the pool's connections, and `translated()` raises StoreUnavailable (the API answers
    # 503, ingest retries).
    return create_engine(url, pool_size=8, max_overflow=8)


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
