"""Remote commands in SQL (the `CommandStore` port).

Every state change is one conditional UPDATE (`... WHERE state IN (allowed sources)`,
`command_rows.move`), so the API, the expiry timer and ingest can race and the lifecycle
still holds. Each change writes its audit entry in the same transaction. The ingest writer
of vehicle results is `command_results.write_results` (re-exported here for the store).
"""

import json
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import replace
from typing import Any

from sqlalchemy import Connection, Engine, Select, select, update
from sqlalchemy.exc import IntegrityError

from autocloud.adapters.sql.command_results import write_results
from autocloud.adapters.sql.command_rows import (
    audit_entry,
    audit_values,
    command_of,
    move,
)
from autocloud.adapters.sql.desired import upsert_desired
from autocloud.adapters.sql.dialect import Dialect
from autocloud.adapters.sql.errors import translated
from autocloud.adapters.sql.schema_commands import (
    command_audit,
    command_counters,
    command_keys,
    commands,
)
from autocloud.domain.command_records import AuditEntry, Command, VehicleKey, desired_by
from autocloud.domain.commands import OPEN, State
from autocloud.domain.errors import Conflict
from autocloud.domain.records import Value
from autocloud.ports.commands import Sending

SignalIds = Callable[[Iterable[str]], dict[str, int]]


class SqlCommands:
    """The `CommandStore` port on any SQLAlchemy engine."""

    def __init__(
        self, engine: Engine, dialect: Dialect, signal_ids: SignalIds | None = None
    ) -> None:
        self._engine = engine
        self._dialect = dialect
        self._signal_ids = signal_ids  # the telemetry store's path -> id (for desired values)

    def add(
        self,
        command: Command,
        audit: AuditEntry,
        sending: Sending | None = None,
        desired: Mapping[str, Value] | None = None,
    ) -> Command:
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
            # An app-signed command arrives with its signature (the platform's get theirs
            # when first sent: `mark_sent`).
            "counter": command.counter,
            "kid": command.kid,
            "sig": command.sig,
        }
        ids: dict[int, Value] = {}
        if desired:
            if self._signal_ids is None:
                raise TypeError("this command store was built without signal ids")
            found = self._signal_ids(desired)  # before the transaction: it may write them
            ids = {found[path]: value for path, value in desired.items()}
        with translated(), self._engine.begin() as conn:
            try:
                key = conn.execute(commands.insert().values(**values)).inserted_primary_key
            except IntegrityError:
                raise Conflict(
                    "a command with this idempotency key exists already (or the vehicle is gone)"
                ) from None
            conn.execute(command_audit.insert().values(**audit_values(audit)))
            by = desired_by(command.id)
            upsert_desired(conn, self._dialect, command.vehicle_id, ids, command.queued_ms, by)
            sent = None if sending is None else self._sent(conn, command, sending)
        assert key is not None
        return sent or _with_row(command, int(key[0]))

    def _one(self, query: Select[Any]) -> Command | None:
        with translated(), self._engine.connect() as conn:
            row = conn.execute(query).first()
        return None if row is None else command_of(row)

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
        return [command_of(r) for r in rows]

    def find(
        self,
        scope: str | None,
        *,
        vehicle_id: int | None,
        state: State | None,
        vins: Collection[str] | None,
        before: int | None,
        limit: int,
    ) -> list[Command]:
        query = select(commands).order_by(commands.c.row.desc()).limit(limit)
        for column, wanted in (
            (commands.c.brand_id, scope),
            (commands.c.vehicle_id, vehicle_id),
            (commands.c.state, state.value if state else None),
        ):
            if wanted is not None:
                query = query.where(column == wanted)
        if vins is not None:
            query = query.where(commands.c.vin.in_(sorted(vins)))
        if before is not None:
            query = query.where(commands.c.row < before)
        with translated(), self._engine.connect() as conn:
            return [command_of(r) for r in conn.execute(query)]

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
            return [command_of(r) for r in conn.execute(query)]

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

    def mark_sent(self, command_id: str, sending: Sending) -> Command | None:
        with translated(), self._engine.begin() as conn:
            row = conn.execute(select(commands).where(commands.c.id == command_id)).first()
            return None if row is None else self._sent(conn, command_of(row), sending)

    def _sent(self, conn: Connection, command: Command, sending: Sending) -> Command | None:
        """Sign (when the platform does) and move to sent, in the caller's transaction."""
        fields: dict[str, Any] = {}
        detail = sending.audit.detail
        if sending.sign is not None:
            assert sending.kid is not None, "the platform signs with its key id"
            counter = self._next_counter(conn, command.vehicle_id, sending.kid)
            fields = {"counter": counter, "kid": sending.kid, "sig": sending.sign(counter)}
            detail = f"{detail}, counter {counter}"
        if not move(conn, command.id, State.SENT, sending.now_ms, fields):
            return None  # a counter taken stays taken: counters may skip, never repeat
        entry = replace(sending.audit, detail=detail)
        conn.execute(command_audit.insert().values(**audit_values(entry)))
        row = conn.execute(select(commands).where(commands.c.id == command.id)).first()
        return None if row is None else command_of(row)

    def move(
        self, command_id: str, target: State, now_ms: int, audit: AuditEntry, **fields: Any
    ) -> Command | None:
        with translated(), self._engine.begin() as conn:
            if not move(conn, command_id, target, now_ms, fields):
                return None
            conn.execute(command_audit.insert().values(**audit_values(audit)))
            row = conn.execute(select(commands).where(commands.c.id == command_id)).first()
        return None if row is None else command_of(row)

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
            return [command_of(r) for r in conn.execute(query)]

    def audit(self, entry: AuditEntry) -> None:
        with translated(), self._engine.begin() as conn:
            conn.execute(command_audit.insert().values(**audit_values(entry)))

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
            return [audit_entry(r) for r in conn.execute(query)]

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


__all__ = ["SqlCommands", "write_results"]
