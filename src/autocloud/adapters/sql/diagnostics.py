"""Active DTCs and their history in SQL: the ingest writer and the health queries.

`write_dtc_updates` runs inside the ingest transaction (registered in
`store.ingest_writers()`), so a vehicle's active codes are durable with the message that
changed them, before the broker gets its PUBACK.
"""

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import msgspec
from sqlalchemy import Connection, Engine, delete, select, tuple_

from autocloud.adapters.sql.dialect import Dialect
from autocloud.adapters.sql.errors import translated
from autocloud.adapters.sql.schema import vehicles
from autocloud.adapters.sql.schema_diagnostics import dtc_active, dtc_history
from autocloud.domain.dtc_active import ActiveDtc, DtcTransition, DtcUpdate
from autocloud.ports.diagnostics import FleetDtc

_encode = msgspec.json.encode
_decode = msgspec.json.decode


def _json(value: Mapping[str, Any] | None) -> str | None:
    return None if value is None else _encode(value).decode()


def _frame(text: str | None) -> dict[str, Any] | None:
    return None if text is None else dict(_decode(text))


def write_dtc_updates(conn: Connection, dialect: Dialect, updates: Sequence[DtcUpdate]) -> None:
    """Apply DTC updates: delete cleared rows, upsert active ones, append history."""
    removed = sorted({(u.vehicle_id, code) for u in updates for code in u.removed})
    if removed:
        conn.execute(
            delete(dtc_active).where(
                tuple_(dtc_active.c.vehicle_id, dtc_active.c.code).in_(removed)
            )
        )
    rows: dict[tuple[int, str], dict[str, Any]] = {}
    for u in updates:
        for d in u.upserts:
            rows[(u.vehicle_id, d.code)] = {
                "vehicle_id": u.vehicle_id,
                "code": d.code,
                "since_ms": d.since_ms,
                "last_seen_ms": d.last_seen_ms,
                "freeze_frame": _json(d.freeze_frame),
                "source": d.source,
                "received_ms": u.received_ms,
            }
    if rows:
        upsert = dialect.insert(dtc_active)
        upsert = upsert.on_conflict_do_update(
            index_elements=[dtc_active.c.vehicle_id, dtc_active.c.code],
            set_={
                name: upsert.excluded[name]
                for name in ("since_ms", "last_seen_ms", "freeze_frame", "source", "received_ms")
            },
        )
        conn.execute(upsert, [rows[k] for k in sorted(rows)])
    history = [
        {
            "vehicle_id": u.vehicle_id,
            "code": t.code,
            "raised": int(t.raised),
            "ts": t.ts,
            "source": t.source,
            "freeze_frame": _json(t.freeze_frame),
            "received_ms": u.received_ms,
        }
        for u in updates
        for t in u.transitions
    ]
    if history:
        conn.execute(dtc_history.insert(), history)


def _active(row: Any) -> ActiveDtc:
    return ActiveDtc(row.code, row.since_ms, row.last_seen_ms, _frame(row.freeze_frame), row.source)


class SqlDiagnostics:
    """DtcStore on any SQLAlchemy engine."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def active_dtcs(self, vehicle_ids: Iterable[int]) -> dict[int, list[ActiveDtc]]:
        wanted = sorted(set(vehicle_ids))
        found: dict[int, list[ActiveDtc]] = {v: [] for v in wanted}
        if not wanted:
            return found
        query = (
            select(dtc_active)
            .where(dtc_active.c.vehicle_id.in_(wanted))
            .order_by(dtc_active.c.vehicle_id, dtc_active.c.since_ms, dtc_active.c.code)
        )
        with translated(), self._engine.connect() as conn:
            for row in conn.execute(query):
                found[row.vehicle_id].append(_active(row))
        return found

    def dtc_history(self, vehicle_id: int, limit: int) -> list[DtcTransition]:
        query = (
            select(dtc_history)
            .where(dtc_history.c.vehicle_id == vehicle_id)
            .order_by(dtc_history.c.ts.desc(), dtc_history.c.id.desc())
            .limit(limit)
        )
        with translated(), self._engine.connect() as conn:
            return [
                DtcTransition(r.code, bool(r.raised), r.ts, r.source, _frame(r.freeze_frame))
                for r in conn.execute(query)
            ]

    def fleet_dtcs(self, scope: str | None) -> list[FleetDtc]:
        query = (
            select(
                vehicles.c.vin,
                vehicles.c.brand_id,
                vehicles.c.model,
                dtc_active.c.code,
                dtc_active.c.since_ms,
            )
            .join(vehicles, vehicles.c.id == dtc_active.c.vehicle_id)
            .order_by(vehicles.c.vin, dtc_active.c.code)
        )
        if scope is not None:
            query = query.where(vehicles.c.brand_id == scope)
        with translated(), self._engine.connect() as conn:
            return [
                FleetDtc(r.vin, r.brand_id, r.model, r.code, r.since_ms)
                for r in conn.execute(query)
            ]
