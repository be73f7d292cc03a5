"""Remote commands in SQL (the `CommandStore` port) and the ingest writer of vehicle results.

Every state change is one conditional UPDATE (`... WHERE state IN (allowed sources)`), so
the API, the expiry timer and ingest can race and the lifecycle still holds. Each change
writes its audit entry in the same transaction.
"""

import json
import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace
from typing import Any

from sqlalchemy import Connection, Engine, Select, select, update
from sqlalchemy.engine import Row
from sqlalchemy.exc import IntegrityError

from autocloud.adapters.sql.dialect import Dialect
from autocloud.adapters.sql.errors import translated
from autocloud.adapters.sql.schema_commands import (
    command_audit,
    command_counters,
    command_keys,
    commands,
)
from autocloud.domain.command_records import AuditEntry, Command, VehicleKey
from autocloud.domain.commands import OPEN, TERMINAL, State, may_move, sources_of
from autocloud.domain.errors import Conflict
from autocloud.domain.protocol import CommandResult, CommandStatus
from autocloud.domain.records import Reply

log = logging.getLogger(__name__)

# The column that records when a command reached each state.
_TIME_OF: dict[State, str] = {
    State.SENT: "sent_ms",
    State.DELIVERED: "delivered_ms",
    **{s: "finished_ms" for s in TERMINAL},
}
_STATUS_TARGET = {
    CommandStatus.ACCEPTED: State.DELIVERED,
    CommandStatus.SUCCEEDED: State.SUCCEEDED,
    CommandStatus.FAILED: State.FAILED,
    CommandStatus.REJECTED: State.REJECTED,
}
_WRITABLE = frozenset({"counter", "kid", "sig", "reason", "result"})


def _command(row: Row[Any]) -> Command:
    return Command(
        id=row.id,
        vehicle_id=row.vehicle_id,
        vin=row.vin,
        brand=row.brand_id,
        name=row.name,
        params=json.loads(row.params),
        state=State(row.state),
        caller=row.caller,
        issued_ms=row.issued_ms,
        expires_ms=row.expires_ms,
        queued_ms=row.queued_ms,
        owner_id=row.owner_id,
        idempotency_key=row.idempotency_key,
        reason=row.reason,
        result=json.loads(row.result) if row.result else {},
        counter=row.counter,
        kid=row.kid,
        sig=row.sig,
        sent_ms=row.sent_ms,
        delivered_ms=row.delivered_ms,
        finished_ms=row.finished_ms,
        row=row.row,
    )


def _audit_values(entry: AuditEntry) -> dict[str, Any]:
    return {
        "at_ms": entry.at_ms,
        "brand_id": entry.brand,
        "vin": entry.vin,
        "command_id": entry.command_id,
        "name": entry.name,
        "caller": entry.caller[:200],
        "action": entry.action,
        "detail": entry.detail,
    }


def _audit_entry(row: Row[Any]) -> AuditEntry:
    return AuditEntry(
        at_ms=row.at_ms,
        caller=row.caller,
        action=row.action,
        detail=row.detail,
        brand=row.brand_id,
        vin=row.vin,
        command_id=row.command_id,
        name=row.name,
        row=row.row,
    )


def _move(
    conn: Connection, command_id: str, target: State, now_ms: int, fields: dict[str, Any]
) -> bool:
    """One conditional UPDATE; True when the command moved."""
    unknown = set(fields) - _WRITABLE
    if unknown:
        raise TypeError(f"cannot write {sorted(unknown)} with a state change")
    values: dict[str, Any] = {"state": target.value, _TIME_OF[target]: now_ms, **fields}
    if "result" in values:
        values["result"] = json.dumps(values["result"])
    done = conn.execute(
        update(commands)
        .where(
            commands.c.id == command_id,
            commands.c.state.in_([s.value for s in sources_of(target)]),
        )
        .values(**values)
    )
    return done.rowcount == 1


class SqlCommands:
    """The `CommandStore` port on any SQLAlchemy engine."""

    def __init__(self, engine: Engine, dialect: Dialect) -> None:
        self._engine = engine
        self._dialect = dialect

    def add(self, command: Command, audit: AuditEntry) -> Command:
        values = {
            "id": command.id,
            "vehicle_id": command.vehicle_id,
            "vin": command.vin,
            "brand_id": command.brand,
            "name": command.name,
            "params": json.dumps(command.params),
            "state": command.state.value,
            "caller": command.caller,
            "owner_id": command.owner_id,
            "idempotency_key": command.idempotency_key,
            "issued_ms": command.issued_ms,
            "expires_ms": command.expires_ms,
            "queued_ms": command.queued_ms,
        }
        with translated(), self._engine.begin() as conn:
            try:
                key = conn.execute(commands.insert().values(**values)).inserted_primary_key
            except IntegrityError:
                raise Conflict(
                    "a command with this idempotency key exists already (or the vehicle is gone)"
                ) from None
            conn.execute(command_audit.insert().values(**_audit_values(audit)))
        assert key is not None
        return _with_row(command, int(key[0]))

    def _one(self, query: Select[Any]) -> Command | None:
        with translated(), self._engine.connect() as conn:
            row = conn.execute(query).first()
        return None if row is None else _command(row)

    def get(self, command_id: str) -> Command | None:
        return self._one(select(commands).where(commands.c.id == command_id))

    def by_idempotency(self, brand: str, caller: str, key: str) -> Command | None:
        return self._one(
            select(commands).where(
                commands.c.brand_id == brand,
                commands.c.caller == caller,
                commands.c.idempotency_key == key,
            )
        )

    def by_ids(self, ids: Iterable[str]) -> list[Command]:
        wanted = list(dict.fromkeys(ids))
        if not wanted:
            return []
        with translated(), self._engine.connect() as conn:
            rows = conn.execute(select(commands).where(commands.c.id.in_(wanted))).all()
        return [_command(r) for r in rows]

    def find(
        self,
        scope: str | None,
        *,
        vehicle_id: int | None,
        state: State | None,
        owner_id: int | None,
        before: int | None,
        limit: int,
    ) -> list[Command]:
        query = select(commands).order_by(commands.c.row.desc()).limit(limit)
        for column, wanted in (
            (commands.c.brand_id, scope),
            (commands.c.vehicle_id, vehicle_id),
            (commands.c.state, state.value if state else None),
            (commands.c.owner_id, owner_id),
        ):
            if wanted is not None:
                query = query.where(column == wanted)
        if before is not None:
            query = query.where(commands.c.row < before)
        with translated(), self._engine.connect() as conn:
            return [_command(r) for r in conn.execute(query)]

    def waiting(self, vehicle_id: int) -> list[Command]:
        query = (
            select(commands)
            .where(
                commands.c.vehicle_id == vehicle_id,
                commands.c.state.in_([State.QUEUED.value, State.SENT.value]),
            )
            .order_by(commands.c.row)
        )
        with translated(), self._engine.connect() as conn:
            return [_command(r) for r in conn.execute(query)]

    def _next_counter(self, conn: Connection, vehicle_id: int, kid: str) -> int:
        key = (command_counters.c.vehicle_id == vehicle_id) & (command_counters.c.kid == kid)
        seed = self._dialect.insert(command_counters).values(
            vehicle_id=vehicle_id, kid=kid, counter=0
        )
        conn.execute(seed.on_conflict_do_nothing())
        conn.execute(
            update(command_counters).where(key).values(counter=command_counters.c.counter + 1)
        )
        value: int = conn.execute(select(command_counters.c.counter).where(key)).scalar_one()
        return value

    def next_counter(self, vehicle_id: int, kid: str) -> int:
        with translated(), self._engine.begin() as conn:
            return self._next_counter(conn, vehicle_id, kid)

    def mark_sent(
        self,
        command_id: str,
        vehicle_id: int,
        kid: str,
        now_ms: int,
        sign: Callable[[int], str],
        audit: AuditEntry,
    ) -> Command | None:
        with translated(), self._engine.begin() as conn:
            counter = self._next_counter(conn, vehicle_id, kid)
            fields = {"counter": counter, "kid": kid, "sig": sign(counter)}
            if not _move(conn, command_id, State.SENT, now_ms, fields):
                return None  # the counter increment stays: counters may skip, never repeat
            entry = replace(audit, detail=f"{audit.detail}, counter {counter}")
            conn.execute(command_audit.insert().values(**_audit_values(entry)))
            row = conn.execute(select(commands).where(commands.c.id == command_id)).first()
        return None if row is None else _command(row)

    def move(
        self, command_id: str, target: State, now_ms: int, audit: AuditEntry, **fields: Any
    ) -> Command | None:
        with translated(), self._engine.begin() as conn:
            if not _move(conn, command_id, target, now_ms, fields):
                return None
            conn.execute(command_audit.insert().values(**_audit_values(audit)))
            row = conn.execute(select(commands).where(commands.c.id == command_id)).first()
        return None if row is None else _command(row)

    def due(self, now_ms: int, limit: int) -> list[Command]:
        query = (
            select(commands)
            .where(
                commands.c.state.in_([s.value for s in OPEN]),
                commands.c.expires_ms <= now_ms,
            )
            .order_by(commands.c.expires_ms)
            .limit(limit)
        )
        with translated(), self._engine.connect() as conn:
            return [_command(r) for r in conn.execute(query)]

    def audit(self, entry: AuditEntry) -> None:
        with translated(), self._engine.begin() as conn:
            conn.execute(command_audit.insert().values(**_audit_values(entry)))

    def audit_log(
        self,
        scope: str | None,
        *,
        vin: str | None,
        command_id: str | None,
        since: int,
        until: int,
        after: int,
        limit: int,
    ) -> list[AuditEntry]:
        query = (
            select(command_audit)
            .where(
                command_audit.c.row > after,
                command_audit.c.at_ms >= since,
                command_audit.c.at_ms < until,
            )
            .order_by(command_audit.c.row)
            .limit(limit)
        )
        for column, wanted in (
            (command_audit.c.brand_id, scope),
            (command_audit.c.vin, vin),
            (command_audit.c.command_id, command_id),
        ):
            if wanted is not None:
                query = query.where(column == wanted)
        with translated(), self._engine.connect() as conn:
            return [_audit_entry(r) for r in conn.execute(query)]

    def add_key(self, vehicle_id: int, key: VehicleKey) -> VehicleKey:
        values = {
            "vehicle_id": vehicle_id,
            "kid": key.kid,
            "public_key": key.public_key.hex(),
            "label": key.label,
            "owner_id": key.owner_id,
            "added_ms": key.added_ms,
            "added_by": key.added_by,
        }
        with translated(), self._engine.begin() as conn:
            try:
                conn.execute(command_keys.insert().values(**values))
            except IntegrityError:
                raise Conflict(f"key {key.kid} is enrolled with this vehicle already") from None
        return key

    def keys(self, vehicle_id: int) -> list[VehicleKey]:
        query = (
            select(command_keys)
            .where(command_keys.c.vehicle_id == vehicle_id)
            .order_by(command_keys.c.added_ms, command_keys.c.kid)
        )
        with translated(), self._engine.connect() as conn:
            return [
                VehicleKey(
                    r.kid, bytes.fromhex(r.public_key), r.label, r.added_ms, r.added_by, r.owner_id
                )
                for r in conn.execute(query)
            ]


def _with_row(command: Command, row: int) -> Command:
    return replace(command, row=row)


def write_results(conn: Connection, dialect: Dialect, replies: Sequence[Reply]) -> None:
    """Ingest writer of `CommandResult`s: move each command, in the ingest transaction.

    A result is vehicle input: one for a command the vehicle was never sent, or one the
    lifecycle does not allow (a late answer to an expired command), is recorded in the
    audit log and otherwise ignored; it never raises.
    """
    for reply in replies:
        message = reply.message
        assert isinstance(message, CommandResult)
        caller = f"vehicle {reply.vin}"
        row = conn.execute(select(commands).where(commands.c.id == message.id)).first()
        base = {"at_ms": reply.received_ms, "caller": caller, "vin": reply.vin}
        if row is None or row.vehicle_id != reply.vehicle_id:
            log.warning("%s answered unknown command %r (audit log)", reply.vin, message.id)
            conn.execute(
                command_audit.insert().values(
                    **base,
                    brand_id=reply.brand,
                    command_id=message.id[:64],
                    action="unknown_result",
                    detail=f"{message.status.value} for a command this vehicle was never sent",
                )
            )
            continue
        target = _STATUS_TARGET[message.status]
        current = State(row.state)
        entry = {**base, "brand_id": row.brand_id, "command_id": row.id, "name": row.name}
        fields: dict[str, Any] = {}
        if target in TERMINAL:
            fields = {"reason": message.reason, "result": message.data}
        if not may_move(current, target) or not _move(
            conn, row.id, target, reply.received_ms, fields
        ):
            conn.execute(
                command_audit.insert().values(
                    **entry,
                    action="ignored_result",
                    detail=f"{message.status.value} arrived for a command already {current.value}",
                )
            )
            continue
        detail = message.status.value + (f": {message.reason}" if message.reason else "")
        conn.execute(command_audit.insert().values(**entry, action=target.value, detail=detail))


__all__ = ["SqlCommands", "write_results"]
