"""A WriteBatch turned into the rows the ingest transaction writes, one per key, in key order.

Key order everywhere: two consumers committing overlapping batches then take row locks in
the same order and cannot deadlock, and SQLite's B-trees are filled front to back. Within a
batch the later write of a key wins, as it would across batches.
"""

from collections.abc import Iterable
from typing import Any, Final

import msgspec

from autocloud.adapters.sql.dialect import HistoryTuple, WindowTuple
from autocloud.domain.records import PresenceChange, Value, WriteBatch

_encode: Final = msgspec.json.encode


def history_rows(batch: WriteBatch, encoded: dict[int, str]) -> list[HistoryTuple]:
    """One row per (vehicle, ts): the body of every signal sampled at that instant, keyed by
    signal id (msgspec writes the integer keys as JSON strings).

    Frames of the same instant are merged, the later value of a signal winning, as a
    redelivered or corrected sample would in a later batch (the store merges bodies the same
    way). Each body written is remembered in `encoded` by the id of its values, so the twin's
    rows reuse the JSON of a frame instead of encoding it again.
    """
    bodies: dict[tuple[int, int], dict[int, Value]] = {}
    merged: set[tuple[int, int]] = set()
    for vehicle_id, ts, values in batch.history:
        key = (vehicle_id, ts)
        held = bodies.get(key)
        if held is None:
            bodies[key] = values
        else:
            bodies[key] = {**held, **values}  # a new dict: a frame is never altered
            merged.add(key)
    rows: list[HistoryTuple] = []
    for key in sorted(bodies):
        values = bodies[key]
        body = _encode(values).decode()
        if key not in merged:
            encoded[id(values)] = body
        rows.append((key[0], key[1], body))
    return rows


def window_rows(batch: WriteBatch) -> list[WindowTuple]:
    now = batch.received_ms
    return [(k[0], k[1], w.top, w.to_bytes(), now) for k, w in sorted(batch.windows.items())]


def presence_rows(changes: Iterable[PresenceChange], *, newest: bool) -> list[dict[str, Any]]:
    """One row per vehicle: the newest change (`newest`), else the last one written."""
    latest: dict[int, PresenceChange] = {}
    for change in changes:
        held = latest.get(change.vehicle_id)
        if held is None or not newest or change.since_ms >= held.since_ms:
            latest[change.vehicle_id] = change
    return [
        {"vehicle_id": c.vehicle_id, "online": c.online, "since_ms": c.since_ms, "sid": c.sid}
        for _, c in sorted(latest.items())
    ]
