"""Alert rules and alerts in SQL: the ingest writers (open, resolve) and the API's queries.

The writers run in the ingest transaction (registered in `store.ingest_writers()`). An
open is an INSERT that the partial unique index `uq_alerts_active` turns into a no-op when
the (rule, vehicle) already has an open or acknowledged alert; either way the record gets
the id of the alert that is open, for the live stream. Pending waits (`alert_pending`) are
upserted when they start and deleted when they end, so a restart resumes them; that writer
goes straight to the driver, as the telemetry upserts do.
"""

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, NamedTuple

import msgspec
from sqlalchemy import Connection, Engine, and_, delete, select, text, update

from autocloud.adapters.sql import twin_rows as twin_store
from autocloud.adapters.sql.dialect import Dialect
from autocloud.adapters.sql.errors import translated
from autocloud.adapters.sql.schema import signals, vehicles
from autocloud.adapters.sql.schema_diagnostics import alert_pending, alert_rules, alerts
from autocloud.domain.alerts import (
    Alert,
    AlertChanges,
    AlertOpened,
    AlertResolved,
    AlertRule,
    AlertState,
    Condition,
    PendingChanges,
    PendingWait,
    condition_spec,
    parse_condition,
)
from autocloud.domain.dtc import Severity
from autocloud.domain.errors import NotFound

_encode = msgspec.json.encode
_decode = msgspec.json.decode
_ACTIVE_STATES = (AlertState.OPEN.value, AlertState.ACKNOWLEDGED.value)


def _rule(row: Any) -> AlertRule:
    condition = parse_condition(_decode(row.spec), None)
    return AlertRule(
        row.id,
        row.brand_id,
        row.name,
        Severity.parse(row.severity),
        condition,
        row.created_ms,
        row.created_by,
    )


def _alert(row: Any) -> Alert:
    return Alert(
        id=row.id,
        rule_id=row.rule_id,
        rule_name=row.rule_name,
        brand=row.brand_id,
        vehicle_id=row.vehicle_id,
        vin=row.vin,
        severity=row.severity,
        state=AlertState(row.state),
        key=row.key,
        value=_decode(row.value),
        detail=row.detail,
        opened_ts=row.opened_ts,
        opened_ms=row.opened_ms,
        acked_ms=row.acked_ms,
        acked_by=row.acked_by,
        resolved_ts=row.resolved_ts,
        resolved_ms=row.resolved_ms,
        resolved_reason=row.resolved_reason,
    )


def _active(rule_id: Any, vehicle_id: Any) -> Any:
    return and_(
        alerts.c.rule_id == rule_id,
        alerts.c.vehicle_id == vehicle_id,
        alerts.c.state.in_(_ACTIVE_STATES),
    )


def write_alert_changes(
    conn: Connection, dialect: Dialect, batches: Sequence[AlertChanges]
) -> None:
    """Apply each batch's alert transitions in the order they happened."""
    items = [r for b in batches for r in b.items]
    opened = [r for r in items if isinstance(r, AlertOpened)]
    ids = {r.rule_id for r in opened}
    live = (
        set(conn.execute(select(alert_rules.c.id).where(alert_rules.c.id.in_(ids))).scalars())
        if ids
        else set()
    )
    for r in items:
        if isinstance(r, AlertOpened):
            if r.rule_id in live:  # a rule deleted meanwhile opens nothing
                _open(conn, dialect, r)
        else:
            _resolve(conn, r)


def write_pending_changes(
    conn: Connection, dialect: Dialect, batches: Sequence[PendingChanges]
) -> None:
    """Delete the waits that ended and upsert the ones that started, batch by batch.

    Straight to the driver (SQLite: `executemany` with tuples; PostgreSQL: one statement
    over arrays), as the telemetry upserts: SQLAlchemy's per-row parameter processing would
    cost more than the database's work. A wait of a rule or vehicle deleted meanwhile is
    skipped by the statement itself (its row would break the foreign key, and with it the
    whole ingest commit)."""
    sql = _PENDING_SQL[dialect.name]
    for b in batches:
        if b.ended:
            ended = list(dict.fromkeys(b.ended))
            if sql.arrays:
                conn.exec_driver_sql(sql.delete, tuple(map(list, zip(*ended, strict=True))))
            else:
                conn.exec_driver_sql(sql.delete, ended)
        if b.started:
            # One row per key, the last (an upsert over arrays may not touch a row twice).
            rows = {
                (w.rule_id, w.vehicle_id, w.key): (
                    w.rule_id,
                    w.vehicle_id,
                    w.key,
                    w.since,
                    w.last_ts,
                    _encode(w.value).decode(),
                )
                for w in b.started
            }
            if sql.arrays:
                columns = tuple(map(list, zip(*rows.values(), strict=True)))
                conn.exec_driver_sql(sql.upsert, columns)
            else:  # the ids once more, for the existence checks
                conn.exec_driver_sql(sql.upsert, [(*row, row[0], row[1]) for row in rows.values()])


class _PendingSql(NamedTuple):
    upsert: str
    delete: str
    arrays: bool  # one statement over column arrays (else executemany over rows)


_PENDING_SQL: dict[str, _PendingSql] = {
    "sqlite": _PendingSql(
        'INSERT INTO alert_pending (rule_id, vehicle_id, "key", since_ts, last_ts, value) '
        "SELECT ?, ?, ?, ?, ?, ? "
        "WHERE EXISTS (SELECT 1 FROM alert_rules WHERE id = ?) "
        "AND EXISTS (SELECT 1 FROM vehicles WHERE id = ?) "
        'ON CONFLICT (rule_id, vehicle_id, "key") DO UPDATE SET since_ts = excluded.since_ts, '
        "last_ts = excluded.last_ts, value = excluded.value",
        'DELETE FROM alert_pending WHERE rule_id = ? AND vehicle_id = ? AND "key" = ?',
        arrays=False,
    ),
    "postgresql": _PendingSql(
        'INSERT INTO alert_pending (rule_id, vehicle_id, "key", since_ts, last_ts, value) '
        "SELECT u.r, u.v, u.k, u.s, u.l, u.x FROM unnest(%s::integer[], %s::integer[], "
        "%s::text[], %s::bigint[], %s::bigint[], %s::text[]) AS u(r, v, k, s, l, x) "
        "WHERE EXISTS (SELECT 1 FROM alert_rules WHERE id = u.r) "
        "AND EXISTS (SELECT 1 FROM vehicles WHERE id = u.v) "
        'ON CONFLICT (rule_id, vehicle_id, "key") DO UPDATE SET since_ts = EXCLUDED.since_ts, '
        "last_ts = EXCLUDED.last_ts, value = EXCLUDED.value",
        "DELETE FROM alert_pending AS p USING unnest(%s::integer[], %s::integer[], %s::text[]) "
        'AS u(r, v, k) WHERE p.rule_id = u.r AND p.vehicle_id = u.v AND p."key" = u.k',
        arrays=True,
    ),
}


def _open(conn: Connection, dialect: Dialect, r: AlertOpened) -> None:
    """Open an alert unless (rule, vehicle) has one open already; `r.id` is the open one."""
    insert = dialect.insert(alerts).on_conflict_do_nothing(
        index_elements=[alerts.c.rule_id, alerts.c.vehicle_id],
        index_where=text("state <> 'resolved'"),
    )
    conn.execute(
        insert,
        {
            "rule_id": r.rule_id,
            "rule_name": r.rule_name,
            "brand_id": r.brand,
            "vehicle_id": r.vehicle_id,
            "severity": r.severity,
            "state": AlertState.OPEN.value,
            "key": r.key,
            "value": _encode(r.value).decode(),
            "detail": r.detail,
            "opened_ts": r.ts,
            "opened_ms": r.received_ms,
        },
    )
    r.id = conn.execute(select(alerts.c.id).where(_active(r.rule_id, r.vehicle_id))).scalar()


def _resolve(conn: Connection, r: AlertResolved) -> None:
    """Resolve the open or acknowledged alert of (rule, vehicle), if there is one."""
    r.id = conn.execute(select(alerts.c.id).where(_active(r.rule_id, r.vehicle_id))).scalar()
    if r.id is not None:
        conn.execute(
            update(alerts)
            .where(alerts.c.id == r.id)
            .values(
                state=AlertState.RESOLVED.value,
                resolved_ts=r.ts,
                resolved_ms=r.received_ms,
                resolved_reason=r.reason,
            )
        )


_ALERT_COLUMNS = (*alerts.c, vehicles.c.vin)


class SqlAlerts:
    """AlertStore on any SQLAlchemy engine."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    # --- rules -------------------------------------------------------------------------
    def add_rule(
        self, brand: str, name: str, severity: Severity, condition: Condition, now_ms: int, by: str
    ) -> AlertRule:
        row = {
            "brand_id": brand,
            "name": name,
            "severity": severity.label,
            "spec": _encode(condition_spec(condition)).decode(),
            "created_ms": now_ms,
            "created_by": by,
        }
        with translated(), self._engine.begin() as conn:
            key = conn.execute(alert_rules.insert().values(**row)).inserted_primary_key
            assert key is not None
            rule_id = int(key[0])
        return AlertRule(rule_id, brand, name, severity, condition, now_ms, by)

    def _close_alerts(self, conn: Connection, rule_id: int, now_ms: int, reason: str) -> None:
        conn.execute(
            update(alerts)
            .where(alerts.c.rule_id == rule_id, alerts.c.state.in_(_ACTIVE_STATES))
            .values(state=AlertState.RESOLVED.value, resolved_ms=now_ms, resolved_reason=reason)
        )

    def replace_rule(
        self, rule_id: int, name: str, severity: Severity, condition: Condition, now_ms: int
    ) -> AlertRule:
        spec = _encode(condition_spec(condition)).decode()
        with translated(), self._engine.begin() as conn:
            done = conn.execute(
                update(alert_rules)
                .where(alert_rules.c.id == rule_id)
                .values(name=name, severity=severity.label, spec=spec)
            )
            if not done.rowcount:
                raise NotFound(f"alert rule {rule_id} not found")
            self._close_alerts(conn, rule_id, now_ms, "rule changed")
            # A wait under the old condition does not carry over to the new one.
            conn.execute(delete(alert_pending).where(alert_pending.c.rule_id == rule_id))
            row = conn.execute(select(alert_rules).where(alert_rules.c.id == rule_id)).one()
        return _rule(row)

    def delete_rule(self, rule_id: int, now_ms: int) -> None:
        with translated(), self._engine.begin() as conn:
            done = conn.execute(alert_rules.delete().where(alert_rules.c.id == rule_id))
            if not done.rowcount:
                raise NotFound(f"alert rule {rule_id} not found")
            self._close_alerts(conn, rule_id, now_ms, "rule deleted")

    def rule(self, rule_id: int) -> AlertRule | None:
        with translated(), self._engine.connect() as conn:
            row = conn.execute(select(alert_rules).where(alert_rules.c.id == rule_id)).first()
        return None if row is None else _rule(row)

    def rules(self, scope: str | None, *, after: int, limit: int) -> list[AlertRule]:
        query = select(alert_rules).order_by(alert_rules.c.id).limit(limit)
        query = query.where(alert_rules.c.id > after)
        if scope is not None:
            query = query.where(alert_rules.c.brand_id == scope)
        with translated(), self._engine.connect() as conn:
            return [_rule(r) for r in conn.execute(query)]

    def all_rules(self) -> list[AlertRule]:
        with translated(), self._engine.connect() as conn:
            return [_rule(r) for r in conn.execute(select(alert_rules).order_by(alert_rules.c.id))]

    # --- alerts ------------------------------------------------------------------------
    def pending_waits(self) -> list[PendingWait]:
        with translated(), self._engine.connect() as conn:
            return [
                PendingWait(r.rule_id, r.vehicle_id, r.key, r.since_ts, r.last_ts, _value(r.value))
                for r in conn.execute(select(alert_pending))
            ]

    def open_alert_keys(self) -> list[tuple[int, int, str]]:
        query = select(alerts.c.rule_id, alerts.c.vehicle_id, alerts.c.key).where(
            alerts.c.state.in_(_ACTIVE_STATES)
        )
        with translated(), self._engine.connect() as conn:
            return [(r.rule_id, r.vehicle_id, r.key) for r in conn.execute(query)]

    def alert(self, alert_id: int) -> Alert | None:
        query = (
            select(*_ALERT_COLUMNS)
            .join(vehicles, vehicles.c.id == alerts.c.vehicle_id)
            .where(alerts.c.id == alert_id)
        )
        with translated(), self._engine.connect() as conn:
            row = conn.execute(query).first()
        return None if row is None else _alert(row)

    def alerts(
        self,
        scope: str | None,
        *,
        state: AlertState | None,
        vehicle_id: int | None,
        rule_id: int | None,
        after: int,
        limit: int,
        vins: frozenset[str] | None = None,
    ) -> list[Alert]:
        if vins is not None and not vins:
            return []  # an owner with no vehicle
        query = (
            select(*_ALERT_COLUMNS)
            .join(vehicles, vehicles.c.id == alerts.c.vehicle_id)
            .order_by(alerts.c.id.desc())
            .limit(limit)
        )
        if after:
            query = query.where(alerts.c.id < after)
        if scope is not None:
            query = query.where(alerts.c.brand_id == scope)
        if state is not None:
            query = query.where(alerts.c.state == state.value)
        if vehicle_id is not None:
            query = query.where(alerts.c.vehicle_id == vehicle_id)
        if rule_id is not None:
            query = query.where(alerts.c.rule_id == rule_id)
        if vins is not None:
            query = query.where(vehicles.c.vin.in_(sorted(vins)))
        with translated(), self._engine.connect() as conn:
            return [_alert(r) for r in conn.execute(query)]

    def acknowledge(self, alert_id: int, by: str, now_ms: int, *, resolve: bool) -> Alert | None:
        values: dict[str, Any] = {"state": AlertState.ACKNOWLEDGED.value}
        if resolve:
            values = {
                "state": AlertState.RESOLVED.value,
                "resolved_ms": now_ms,
                "resolved_reason": "acknowledged",
            }
        with translated(), self._engine.begin() as conn:
            done = conn.execute(
                update(alerts)
                .where(alerts.c.id == alert_id, alerts.c.state == AlertState.OPEN.value)
                .values(acked_ms=now_ms, acked_by=by, **values)
            )
        return self.alert(alert_id) if done.rowcount else None

    def twin_values(
        self, vehicle_ids: Iterable[int], paths: Iterable[str]
    ) -> Mapping[int, Mapping[str, tuple[int, Any]]]:
        ids, wanted = sorted(set(vehicle_ids)), sorted(set(paths))
        found: dict[int, dict[str, tuple[int, Any]]] = {v: {} for v in ids}
        if not ids or not wanted:
            return found
        with translated(), self._engine.connect() as conn:
            by_id = {
                r.id: r.path
                for r in conn.execute(
                    select(signals.c.id, signals.c.path).where(signals.c.path.in_(wanted))
                )
            }
            if not by_id:
                return found
            for vehicle_id, stored in twin_store.read(conn, ids, by_id).items():
                for signal_id, (value, ts, _received_ms) in stored.items():
                    found[vehicle_id][by_id[signal_id]] = (ts, value)
        return found


def _value(text: str) -> Any:
    """A stored signal value as ingest has it (an array is a tuple)."""
    value = _decode(text)
    return tuple(value) if isinstance(value, list) else value
