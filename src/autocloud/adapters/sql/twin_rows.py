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
from autocloud.domain.records import Frame, Value, WriteBatch

_encode: Final = msgspec.json.encode
_decode: Final = msgspec.json.decode

Stored = dict[int, tuple[Value, int, int]]  # signal id -> (value, ts, received_ms)


def rows_of(batch: WriteBatch, encoded: dict[int, str]) -> list[TwinTuple]:
    """One row per vehicle, in vehicle order: the batch's newest value of each signal.

    A vehicle with one frame in the batch (the usual case) takes that frame's body as
    `encoded` holds it (history's JSON, keyed by the id of the frame's values); with several,
    each signal takes its newest value, of equal ts the later one.
    """
    now = batch.received_ms
    single: dict[int, Frame] = {}
    several: dict[int, list[Frame]] = {}
    for frame in batch.twin:
        vehicle_id = frame[0]
        if vehicle_id in several:
            several[vehicle_id].append(frame)
        elif vehicle_id in single:
            several[vehicle_id] = [single.pop(vehicle_id), frame]
        else:
            single[vehicle_id] = frame
    rows: list[TwinTuple] = []
    for vehicle_id in sorted(single.keys() | several.keys()):
        only = single.get(vehicle_id)
        if only is not None:
            _, ts, values = only
            body = encoded.get(id(values)) or _encode(values).decode()
            stamp = f"[{ts},{now}]"
            # {"12":[ts,now],"14":[ts,now],...} without a dict or a list per signal
            meta = '{"' + f'":{stamp},"'.join(map(str, values)) + f'":{stamp}}}'
            rows.append((vehicle_id, body, meta, ts, ts))
            continue
        latest: dict[int, tuple[Value, int]] = {}
        for _, ts, values in several[vehicle_id]:
            for key, value in values.items():
                held = latest.get(key)
                if held is None or ts >= held[1]:
                    latest[key] = (value, ts)
        stamps = [ts for _, ts in latest.values()]
        body = _encode({key: held[0] for key, held in latest.items()}).decode()
        meta = _encode({key: (held[1], now) for key, held in latest.items()}).decode()
        rows.append((vehicle_id, body, meta, max(stamps), min(stamps)))
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
