"""Twin, history, events and dead letters in SQL (TelemetryWriter/Reader, DeadLetterStore).

The ingest writer commits a whole batch in one transaction: history rows (duplicates
ignored, so a redelivered message is harmless), twin upserts that only move forward in
time, presence, events, replay windows and dead letters.
"""

import threading
from collections.abc import Collection, Iterable, Mapping, Sequence
from typing import Any

import msgspec
from sqlalchemy import (
    Engine,
    and_,
    delete,
    exists,
    func,
    literal,
    select,
    tuple_,
)
from sqlalchemy.sql.elements import ColumnElement

from autocloud.adapters.sql import batch_rows
from autocloud.adapters.sql import twin_rows as twin_store
from autocloud.adapters.sql.desired import upsert_desired
from autocloud.adapters.sql.dialect import DeferredSync, Dialect
from autocloud.adapters.sql.errors import translated
from autocloud.adapters.sql.extras import Writers
from autocloud.adapters.sql.history_reader import SqlHistory, value_of_json
from autocloud.adapters.sql.registry import _VEHICLE_COLUMNS, _vehicle
from autocloud.adapters.sql.schema import (
    dead_letters,
    desired,
    events,
    history,
    presence,
    seq_windows,
    signals,
    twin,
    vehicles,
)
from autocloud.domain.records import (
    Bucket,
    DeadLetter,
    DesiredSignal,
    HistoryRow,
    Twin,
    TwinSignal,
    Value,
    Vehicle,
    VehicleRef,
    WriteBatch,
)
from autocloud.domain.replay import SeqWindow
from autocloud.ports.stores import SignalCondition

_encode = msgspec.json.encode
_decode = msgspec.json.decode

SUMMARY_PATHS = (
    "Vehicle.Speed",
    "Vehicle.CurrentLocation.Latitude",
    "Vehicle.CurrentLocation.Longitude",
    "Vehicle.Powertrain.TractionBattery.StateOfCharge.Current",
    "Vehicle.Powertrain.FuelSystem.RelativeLevel",
)

_OPERATORS: dict[str, Any] = {
    "<": lambda c, v: c < v,
    "<=": lambda c, v: c <= v,
    ">": lambda c, v: c > v,
    ">=": lambda c, v: c >= v,
    "=": lambda c, v: c == v,
    "!=": lambda c, v: c != v,
}


def _by_path(row: Any) -> str:
    path: str = row.path
    return path


class SqlTelemetry:
    """Writer and reader of telemetry on any SQLAlchemy engine."""

    def __init__(
        self,
        engine: Engine,
        dialect: Dialect,
        writers: Writers | None = None,
        *,
        deferred: DeferredSync | None = None,
    ) -> None:
        self._engine = engine
        self._dialect = dialect
        self._deferred = deferred
        self.writers = writers or Writers()
        self._ids: dict[str, int] = {}
        self._paths: dict[int, str] = {}
        self._lock = threading.Lock()
        self._history = SqlHistory(engine, dialect, self._known_ids)
        # Built once: constructing them per batch cost ~0.25 ms, most of a small batch's
        # fixed cost when ingest runs paced (a batch every few ms).
        upsert = dialect.insert(presence)
        self._presence_upsert = upsert.on_conflict_do_update(
            index_elements=[presence.c.vehicle_id],
            set_={
                "online": upsert.excluded.online,
                "since_ms": upsert.excluded.since_ms,
                "sid": upsert.excluded.sid,
            },
            where=upsert.excluded.since_ms >= presence.c.since_ms,
        )
        # A retained state replayed at subscribe time never overwrites a newer one.
        self._presence_replay = dialect.insert(presence).on_conflict_do_nothing()
        self._events_insert = events.insert()
        self._dead_letters_insert = dead_letters.insert()

    # --- signal dictionary -------------------------------------------------------------
    def signal_ids(self, paths: Iterable[str]) -> dict[str, int]:
        wanted = set(paths)
        missing = wanted - self._ids.keys()
        if missing:
            self._load_ids(missing)
        return {p: self._ids[p] for p in wanted}

    def _load_ids(self, missing: set[str]) -> None:
        insert = self._dialect.insert(signals)
        with self._lock, translated(), self._engine.begin() as conn:
            conn.execute(insert.on_conflict_do_nothing(), [{"path": p} for p in sorted(missing)])
            for row in conn.execute(select(signals.c.id, signals.c.path)):
                self._ids[row.path] = row.id
                self._paths[row.id] = row.path

    def _refresh_ids(self) -> None:
        with translated(), self._engine.connect() as conn:
            for row in conn.execute(select(signals.c.id, signals.c.path)):
                self._ids[row.path] = row.id
                self._paths[row.id] = row.path

    def _path(self, signal_id: int) -> str:
        if signal_id not in self._paths:
            self._refresh_ids()
        return self._paths[signal_id]

    def _known_ids(self, paths: Sequence[str]) -> dict[str, int]:
        """Ids of paths that have ever been stored; a path never stored simply has no data."""
        if any(p not in self._ids for p in paths):
            self._refresh_ids()
        return {p: self._ids[p] for p in paths if p in self._ids}

    # --- ingest writer -----------------------------------------------------------------
    def refs(self, vins: Iterable[str]) -> dict[str, VehicleRef]:
        wanted = list(set(vins))
        query = select(vehicles.c.vin, vehicles.c.id, vehicles.c.brand_id).where(
            vehicles.c.vin.in_(wanted)
        )
        with translated(), self._engine.connect() as conn:
            return {r.vin: VehicleRef(r.id, r.brand_id) for r in conn.execute(query)}

    def windows(self, keys: Iterable[tuple[int, str]]) -> dict[tuple[int, str], SeqWindow]:
        wanted = list(set(keys))
        if not wanted:
            return {}
        query = select(seq_windows).where(
            tuple_(seq_windows.c.vehicle_id, seq_windows.c.sid).in_(wanted)
        )
        with translated(), self._engine.connect() as conn:
            return {
                (r.vehicle_id, r.sid): SeqWindow.from_stored(r.top, r.bits)
                for r in conn.execute(query)
            }

    @property
    def defers_sync(self) -> bool:
        return self._deferred is not None

    def sync(self) -> None:
        if self._deferred is not None:
            self._deferred.sync()  # raises our own DurabilityLost

    def after_sync(self) -> None:
        if self._deferred is not None:
            self._deferred.checkpoint()

    def commit(self, batch: WriteBatch, *, durable: bool = True) -> None:
        hot = self._dialect.hot
        deferred = None if durable else self._deferred
        encoded: dict[int, str] = {}  # JSON of each frame's values, shared by history and twin
        history_rows = batch_rows.history_rows(batch, encoded)
        twin_rows = twin_store.rows_of(batch, encoded)
        window_rows = batch_rows.window_rows(batch)
        with translated(), self._engine.begin() as conn:
            if deferred is not None:
                deferred.relax(conn)
            if history_rows:
                hot.history(conn, history_rows)
            if twin_rows:
                skipped = hot.twin(conn, twin_rows)
                if skipped:
                    twin_store.merge_older(conn, twin_rows, skipped)
            if window_rows:
                hot.windows(conn, window_rows)
            for statement, rows in self._statements(batch):
                if rows:
                    conn.execute(statement, rows)
            if batch.replies or batch.extra:
                self.writers.write(conn, self._dialect, batch)

    def _statements(self, batch: WriteBatch) -> list[tuple[Any, list[dict[str, Any]]]]:
        """The batch's rarer rows (presence, events, dead letters), through SQLAlchemy Core."""
        out: list[tuple[Any, list[dict[str, Any]]]] = []
        if batch.presence:
            live = [c for c in batch.presence if not c.replay]
            replayed = [c for c in batch.presence if c.replay]
            out.append((self._presence_upsert, batch_rows.presence_rows(live, newest=True)))
            out.append((self._presence_replay, batch_rows.presence_rows(replayed, newest=False)))
        if batch.events:
            rows = [
                {
                    "vehicle_id": e.vehicle_id,
                    "ts": e.ts,
                    "type": e.type,
                    "data": _encode(e.data).decode(),
                    "received_ms": e.received_ms,
                }
                for e in batch.events
            ]
            out.append((self._events_insert, rows))
        if batch.dead_letters:
            rows = [
                {
                    "received_ms": d.received_ms,
                    "vin": d.vin,
                    "brand_id": d.brand,
                    "topic": d.topic,
                    "reason": d.reason,
                    "detail": d.detail,
                    "payload": d.payload,
                }
                for d in batch.dead_letters
            ]
            out.append((self._dead_letters_insert, rows))
        return out

    # --- reader ------------------------------------------------------------------------
    def twin(self, vehicle: Vehicle) -> Twin:
        with translated(), self._engine.connect() as conn:
            stored = twin_store.read(conn, [vehicle.id]).get(vehicle.id, {})
            wanted = conn.execute(
                select(signals.c.path, desired.c.value, desired.c.set_ms, desired.c.set_by)
                .join(signals, signals.c.id == desired.c.signal_id)
                .where(desired.c.vehicle_id == vehicle.id)
            ).all()
            state = conn.execute(
                select(presence).where(presence.c.vehicle_id == vehicle.id)
            ).first()
        return Twin(
            vehicle=vehicle,
            online=bool(state.online) if state else False,
            online_since_ms=state.since_ms if state else None,
            sid=state.sid if state else None,
            # Sorted here, by code point, so the order does not depend on the collation.
            reported=tuple(
                sorted(
                    (
                        TwinSignal(self._path(signal_id), value, ts, received_ms)
                        for signal_id, (value, ts, received_ms) in stored.items()
                    ),
                    key=_by_path,
                )
            ),
            desired=tuple(
                DesiredSignal(r.path, value_of_json(r.value), r.set_ms, r.set_by)
                for r in sorted(wanted, key=_by_path)
            ),
        )

    def fleet(
        self,
        scope: str | None,
        *,
        model: str | None,
        online: bool | None,
        conditions: Sequence[SignalCondition],
        after: int,
        limit: int,
        vins: Collection[str] | None = None,
    ) -> list[tuple[Vehicle, bool, Mapping[str, Value]]]:
        is_online = func.coalesce(presence.c.online, literal(False))
        query = (
            select(*_VEHICLE_COLUMNS, is_online.label("online"))
            .select_from(vehicles.outerjoin(presence, presence.c.vehicle_id == vehicles.c.id))
            .where(vehicles.c.id > after)
            .order_by(vehicles.c.id)
            .limit(limit)
        )
        if scope is not None:
            query = query.where(vehicles.c.brand_id == scope)
        if model is not None:
            query = query.where(vehicles.c.model == model)
        if online is not None:
            query = query.where(is_online == online)
        if vins is not None:  # an owner's token: only the owner's vehicles
            query = query.where(vehicles.c.vin.in_(sorted(vins)))
        paths = list(dict.fromkeys([*SUMMARY_PATHS, *(c.path for c in conditions)]))
        ids = self.signal_ids(paths)
        for condition in conditions:
            query = query.where(self._condition(condition, ids[condition.path]))
        with translated(), self._engine.connect() as conn:
            rows = conn.execute(query).all()
            values: dict[int, dict[str, Value]] = {r.id: {} for r in rows}
            if rows:
                by_id = {v: k for k, v in ids.items()}
                for vehicle_id, found in twin_store.read(conn, list(values), by_id).items():
                    values[vehicle_id] = {by_id[i]: value for i, (value, _, _) in found.items()}
        return [(_vehicle(r), bool(r.online), values[r.id]) for r in rows]

    def _condition(self, condition: SignalCondition, signal_id: int) -> ColumnElement[bool]:
        compare = _OPERATORS[condition.op]
        body = self._dialect.body
        if isinstance(condition.value, str):
            column: Any = body.value_json(twin.c.body, signal_id)
            target: Any = _encode(condition.value).decode()
        else:
            column, target = body.number(twin.c.body, signal_id), float(condition.value)
        return exists().where(and_(twin.c.vehicle_id == vehicles.c.id, compare(column, target)))

    def history(
        self,
        vehicle_id: int,
        paths: Sequence[str],
        since: int,
        until: int,
        *,
        after: tuple[int, str] | None,
        limit: int,
    ) -> list[HistoryRow]:
        return self._history.rows(vehicle_id, paths, since, until, after=after, limit=limit)

    def buckets(
        self, vehicle_id: int, paths: Sequence[str], since: int, until: int, bucket_ms: int
    ) -> list[Bucket]:
        return self._history.buckets(vehicle_id, paths, since, until, bucket_ms)

    def set_desired(self, vehicle_id: int, path: str, value: Value, now_ms: int, by: str) -> None:
        self.set_desired_many(vehicle_id, {path: value}, now_ms, by)

    def set_desired_many(
        self, vehicle_id: int, values: Mapping[str, Value], now_ms: int, by: str
    ) -> None:
        """Several desired values in one transaction (one commit for all of them)."""
        if not values:
            return
        ids = self.signal_ids(list(values))
        by_id = {ids[path]: value for path, value in values.items()}
        with translated(), self._engine.begin() as conn:
            upsert_desired(conn, self._dialect, vehicle_id, by_id, now_ms, by)

    def online_count(self) -> int:
        with translated(), self._engine.connect() as conn:
            return int(
                conn.execute(select(func.count()).where(presence.c.online.is_(True))).scalar() or 0
            )

    def purge_history(self, before_ms: int) -> int:
        with translated(), self._engine.begin() as conn:
            removed = conn.execute(delete(history).where(history.c.ts < before_ms)).rowcount
            conn.execute(delete(events).where(events.c.ts < before_ms))
            # Replay windows of boot sessions silent since then: their messages are history.
            conn.execute(delete(seq_windows).where(seq_windows.c.updated_ms < before_ms))
        return int(removed or 0)

    # --- dead letters ------------------------------------------------------------------
    def dead_letters(
        self, scope: str | None, *, reason: str | None, vin: str | None, after: int, limit: int
    ) -> list[DeadLetter]:
        query = select(dead_letters).order_by(dead_letters.c.id.desc()).limit(limit)
        if after:
            query = query.where(dead_letters.c.id < after)
        if scope is not None:
            query = query.where(dead_letters.c.brand_id == scope)
        if reason is not None:
            query = query.where(dead_letters.c.reason == reason)
        if vin is not None:
            query = query.where(dead_letters.c.vin == vin)
        with translated(), self._engine.connect() as conn:
            return [
                DeadLetter(
                    received_ms=r.received_ms,
                    topic=r.topic,
                    reason=r.reason,
                    detail=r.detail,
                    payload=bytes(r.payload),
                    vin=r.vin,
                    brand=r.brand_id,
                    id=r.id,
                )
                for r in conn.execute(query)
            ]

    def dead_letter_counts(self, scope: str | None) -> dict[str, int]:
        query = select(dead_letters.c.reason, func.count()).group_by(dead_letters.c.reason)
        if scope is not None:
            query = query.where(dead_letters.c.brand_id == scope)
        with translated(), self._engine.connect() as conn:
            return {reason: int(n) for reason, n in conn.execute(query)}

    def purge_dead_letters(self, before_ms: int) -> int:
        with translated(), self._engine.begin() as conn:
            return int(
                conn.execute(
                    delete(dead_letters).where(dead_letters.c.received_ms < before_ms)
                ).rowcount
                or 0
            )
