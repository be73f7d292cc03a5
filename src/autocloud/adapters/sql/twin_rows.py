"""The twin table (one row per vehicle, migration 0010): what a batch writes, and reading it.

A row's `body` maps signal id to the latest value, `meta` maps it to [ts, received_ms], and
`newest_ts` is the largest ts in the row. The ingest write (`Dialect.hot.twin`) merges a
vehicle's new signals into its row in one statement, but only when none of them is older than
`newest_ts`; the writes it skips (a store-and-forward message, or two consumers committing a
vehicle's messages out of order) are merged here signal by signal, so that no signal ever
moves back in time. Both databases store the same JSON; PostgreSQL hands it back decoded.
"""

from collections.abc import Collection, Iterable
from typing import Any, Final

import msgspec
from sqlalchemy import Connection, select

from autocloud.adapters.sql.dialect import TwinTuple
from autocloud.adapters.sql.schema import twin
from autocloud.domain.records import Point, Value, WriteBatch

_encode: Final = msgspec.json.encode
_decode: Final = msgspec.json.decode

Stored = dict[int, tuple[Value, int, int]]  # signal id -> (value, ts, received_ms)


def rows_of(batch: WriteBatch) -> list[TwinTuple]:
    """One row per vehicle, in vehicle order: the batch's newest value of each signal.

    `Record` already keeps one point per (vehicle, signal), the newest; this keeps the rule
    for any caller.
    """
    now = batch.received_ms
    latest: dict[int, dict[int, Point]] = {}
    for p in batch.twin:
        mine = latest.get(p.vehicle_id)
        if mine is None:
            mine = latest[p.vehicle_id] = {}
        held = mine.get(p.signal_id)
        if held is None or p.ts >= held.ts:
            mine[p.signal_id] = p
    rows: list[TwinTuple] = []
    for vehicle_id in sorted(latest):
        points = latest[vehicle_id]
        stamps = {p.ts for p in points.values()}
        if len(stamps) == 1:  # the usual case: one instant, so one [ts, received_ms] for all
            (ts,) = stamps
            stamp = f"[{ts},{now}]"
            meta = "{" + ",".join([f'"{key}":{stamp}' for key in points]) + "}"
            newest = oldest = ts
        else:
            meta = _encode({key: (p.ts, now) for key, p in points.items()}).decode()
            newest, oldest = max(stamps), min(stamps)
        body = _encode({key: p.value for key, p in points.items()}).decode()
        rows.append((vehicle_id, body, meta, newest, oldest))
    return rows


def merge_older(conn: Connection, rows: list[TwinTuple], vehicle_ids: Collection[int]) -> None:
    """Merge the rows of `vehicle_ids` signal by signal: a signal takes the new value only
    when its new ts is not older than the stored one. Rows are locked in vehicle order."""
    wanted = [r for r in rows if r[0] in vehicle_ids]
    if not wanted:
        return
    query = (
        select(twin.c.vehicle_id, twin.c.body, twin.c.meta)
        .where(twin.c.vehicle_id.in_([r[0] for r in wanted]))
        .order_by(twin.c.vehicle_id)
    )
    postgres = conn.dialect.name == "postgresql"
    if postgres:
        query = query.with_for_update()
    stored = {r.vehicle_id: (_json(r.body), _json(r.meta)) for r in conn.execute(query)}
    for vehicle_id, body_json, meta_json, _newest, _oldest in wanted:
        body, meta = stored.get(vehicle_id, ({}, {}))
        new_body, new_meta = _decode(body_json), _decode(meta_json)
        for key, stamp in new_meta.items():
            held = meta.get(key)
            if held is None or stamp[0] >= held[0]:
                meta[key] = stamp
                body[key] = new_body[key]
        newest = max(stamp[0] for stamp in meta.values())
        values: dict[str, Any] = {"body": body, "meta": meta, "newest_ts": newest}
        if not postgres:  # a Text column there: the JSON itself
            values = {**values, "body": _encode(body).decode(), "meta": _encode(meta).decode()}
        if vehicle_id in stored:
            conn.execute(twin.update().where(twin.c.vehicle_id == vehicle_id).values(**values))
        else:
            conn.execute(twin.insert().values(vehicle_id=vehicle_id, **values))
        stored[vehicle_id] = (body, meta)


def read(
    conn: Connection, vehicle_ids: Iterable[int], signal_ids: Collection[int] | None = None
) -> dict[int, Stored]:
    """Each vehicle's stored signals (all, or only `signal_ids`); vehicles without a twin row
    are absent."""
    ids = list(vehicle_ids)
    if not ids:
        return {}
    out: dict[int, Stored] = {}
    query = select(twin.c.vehicle_id, twin.c.body, twin.c.meta).where(twin.c.vehicle_id.in_(ids))
    for row in conn.execute(query):
        body, meta = _json(row.body), _json(row.meta)
        out[row.vehicle_id] = {
            int(key): (_value(value), meta[key][0], meta[key][1])
            for key, value in body.items()
            if signal_ids is None or int(key) in signal_ids
        }
    return out


def _json(raw: Any) -> dict[str, Any]:
    """A stored JSON object: text on SQLite, already decoded by psycopg on PostgreSQL."""
    decoded: dict[str, Any] = _decode(raw) if isinstance(raw, str | bytes) else raw
    return decoded


def _value(decoded: Any) -> Value:
    """A decoded JSON value as a `Value` (arrays as tuples, as ingest normalised them)."""
    return tuple(decoded) if isinstance(decoded, list) else decoded
