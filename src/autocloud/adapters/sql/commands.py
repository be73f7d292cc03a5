"""Remote commands in SQL (the `CommandStore` port).

Every state change is one conditional UPDATE (`... WHERE state IN (allowed sources)`,
`command_rows.move`), so the API, the expiry timer and ingest can race and the lifecycle
still holds. Each change writes its audit entry in the same transaction. The ingest writer
of vehicle results is `command_results.write_results` (re-exported here for the store).

On SQLite this store's write transactions take turns on a lock of the process
(`_writing`): SQLite lets one writer in at a time and makes the others poll with sleeps
that grow to 100 ms, so concurrent API calls starved each other (commits of over a second
with 8 concurrent senders, BENCHMARKS.md); on the lock they queue and go in at once. New
commands, the write of every command sent, go further: those that arrive while a commit is
under way share the next transaction and its one commit (`command_group.GroupCommit`).

The statements of every command are built once, at import (`command_rows`); on PostgreSQL
reads run outside transactions (`_reader`), which spares a BEGIN and a ROLLBACK each.
"""

import json
import threading
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from dataclasses import replace
from functools import cache
from typing import Any

import msgspec
from sqlalchemy import Connection, Engine, Insert, Select, bindparam, select
from sqlalchemy.exc import IntegrityError

from autocloud.adapters.sql.command_group import GroupCommit
from autocloud.adapters.sql.command_keys import (
    add_key,
    key_list,
    keys_of,
    remove_keys,
    vehicle_lock,
    vin_of,
)
from autocloud.adapters.sql.command_results import write_results
from autocloud.adapters.sql.command_rows import (
    BY_ID,
    BY_IDS,
    audit_entry,
    audit_values,
    command_of,
    move,
    take_counter,
)
from autocloud.adapters.sql.dialect import Dialect
from autocloud.adapters.sql.errors import translated
from autocloud.adapters.sql.schema import desired as desired_table
from autocloud.adapters.sql.schema import presence, signals, twin
from autocloud.adapters.sql.schema_commands import (
    command_audit,
    commands,
)
from autocloud.domain.command_records import AuditEntry, Command, VehicleKey, desired_by
from autocloud.domain.commands import OPEN, State
from autocloud.domain.errors import Conflict
from autocloud.domain.records import Value
from autocloud.ports.commands import Publish, Sending

SignalIds = Callable[[Iterable[str]], dict[str, int]]

# The statements of every command, built once (see `command_rows`: building one per call cost
# several times its execution).
_PRESENCE = select(presence.c.online).where(presence.c.vehicle_id == bindparam("b_vehicle"))
_TWIN_BODY = select(twin.c.body).where(twin.c.vehicle_id == bindparam("b_vehicle"))
_SIGNAL_IDS = select(signals.c.path, signals.c.id).where(
    signals.c.path.in_(bindparam("b_paths", expanding=True))
)
_INSERT = commands.insert()
_AUDIT = command_audit.insert()


@cache
def _desired_upsert(insert: Any) -> Insert:
    """Set a desired value of the twin (`insert`: the dialect's), as `desired.upsert_desired`
    does, as one statement object run with a row per value."""
    upsert = insert(desired_table)
    return upsert.on_conflict_do_update(  # type: ignore[no-any-return]
        index_elements=[desired_table.c.vehicle_id, desired_table.c.signal_id],
        set_={
            "value": upsert.excluded.value,
            "set_ms": upsert.excluded.set_ms,
            "set_by": upsert.excluded.set_by,
        },
    )


class SqlCommands:
    """The `CommandStore` port on any SQLAlchemy engine."""

    def __init__(
        self, engine: Engine, dialect: Dialect, signal_ids: SignalIds | None = None
    ) -> None:
        self._engine = engine
        self._dialect = dialect
        self._signal_ids = signal_ids  # the telemetry store's path -> id (for desired values)
        self._one_writer = threading.Lock() if dialect.name == "sqlite" else None
        self._group = GroupCommit(engine, self._one_writer) if self._one_writer else None
        # Reads outside a transaction on PostgreSQL: no BEGIN, and no ROLLBACK when the
        # connection goes back to the pool (a round trip each, for every read of the API).
        pg = dialect.name == "postgresql"
        self._reader = engine.execution_options(isolation_level="AUTOCOMMIT") if pg else engine

    @contextmanager
    def _writing(self, conn: Connection) -> Iterator[Connection]:
        """A transaction on `conn` (committed at the end of the block), on SQLite in turn
        with this store's other writers of this process."""
        if self._one_writer is None:
            with conn.begin():
                yield conn
            return
        with self._one_writer, conn.begin():
            yield conn

    @contextmanager
    def _begin(self) -> Iterator[Connection]:
        """A new connection in a transaction, as `_writing`."""
        with self._engine.connect() as conn, self._writing(conn):
            yield conn

    def add(
        self,
        command: Command,
        audit: AuditEntry,
        sending: Sending | None = None,
        desired: Mapping[str, Value] | None = None,
        publish: Publish | None = None,
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

        def write(conn: Connection) -> Command:
            """This command's statements, in the transaction of `conn`."""
            stored, entries, row = command, [audit], dict(values)
            if sending is not None:
                # Stored as sent straight away (the same row and audit trail as storing it
                # queued and then moving it): a new command can be in no other state.
                stored, sent_audit = self._signing(conn, command, sending)
                row.update(
                    state=stored.state.value,
                    sent_ms=stored.sent_ms,
                    counter=stored.counter,
                    kid=stored.kid,
                    sig=stored.sig,
                )
                entries.append(sent_audit)
            try:
                key = conn.execute(_INSERT, row).inserted_primary_key
            except IntegrityError:
                raise Conflict(
                    "a command with this idempotency key exists already (or the vehicle is gone)"
                ) from None
            assert key is not None
            conn.execute(_AUDIT, [audit_values(e) for e in entries])
            if ids:
                by = desired_by(command.id)
                rows = [
                    {
                        "vehicle_id": command.vehicle_id,
                        "signal_id": signal_id,
                        "value": msgspec.json.encode(value).decode(),
                        "set_ms": command.queued_ms,
                        "set_by": by,
                    }
                    for signal_id, value in sorted(ids.items())
                ]
                conn.execute(_desired_upsert(self._dialect.insert), rows)
            return _with_row(stored, int(key[0]))

        if self._group is not None:  # SQLite: one process, sends ordered by `Delivery`
            with translated():
                stored = self._group.run(write)
            if sending is not None and publish is not None:
                publish(stored)  # committed, and still under the vehicle's (in-process) lock
            return stored
        with translated(), self._conn(command.vehicle_id, sending is not None) as conn:
            with conn.begin():
                stored = write(conn)
            if sending is not None and publish is not None:
                publish(stored)  # committed, and still under the vehicle's lock
        return stored

    def _signing(
        self, conn: Connection, command: Command, sending: Sending
    ) -> tuple[Command, AuditEntry]:
        """The command signed (the next counter, when the platform signs) and marked sent,
        with its `sent` audit entry; the counter is taken in the caller's transaction."""
        detail = sending.audit.detail
        fields: dict[str, Any] = {"state": State.SENT, "sent_ms": sending.now_ms}
        if sending.sign is not None:
            assert sending.kid is not None, "the platform signs with its key id"
            counter = take_counter(conn, self._dialect, command.vehicle_id, sending.kid)
            fields.update(counter=counter, kid=sending.kid, sig=sending.sign(counter))
            detail = f"{detail}, counter {counter}"
        return replace(command, **fields), replace(sending.audit, detail=detail)

    def _conn(self, vehicle_id: int, locked: bool) -> AbstractContextManager[Connection]:
        """A connection; holding the vehicle's send lock when a counter is to be taken."""
        if locked:
            return vehicle_lock(self._engine, self._dialect, vehicle_id)
        return self._engine.connect()

    def _one(self, query: Select[Any], params: dict[str, Any] | None = None) -> Command | None:
        with translated(), self._reader.connect() as conn:
            row = conn.execute(query, params).first()
        return None if row is None else command_of(row)

    def get(self, command_id: str) -> Command | None:
        return self._one(BY_ID, {"b_id": command_id})

    def interlock_view(
        self, vehicle_id: int, paths: Collection[str]
    ) -> tuple[bool, dict[str, Value]]:
        # Ids first: the telemetry store's cache may have to write a path never seen.
        ids = self._signal_ids(paths) if self._signal_ids is not None and paths else None
        with translated(), self._reader.connect() as conn:
            online = conn.execute(_PRESENCE, {"b_vehicle": vehicle_id}).scalar_one_or_none()
            body: Any = None
            if paths:
                if ids is None:
                    rows = conn.execute(_SIGNAL_IDS, {"b_paths": sorted(paths)})
                    ids = {r.path: r.id for r in rows}
                body = conn.execute(_TWIN_BODY, {"b_vehicle": vehicle_id}).scalar_one_or_none()
        if body is None or not ids:
            return bool(online), {}
        # One row per vehicle: each signal's latest value by signal id (JSON text on SQLite,
        # decoded JSONB on PostgreSQL).
        latest = msgspec.json.decode(body) if isinstance(body, str | bytes) else body
        reported = {path: latest.get(str(i), _ABSENT) for path, i in ids.items()}
        return bool(online), {p: _reported(v) for p, v in reported.items() if v is not _ABSENT}

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
        with translated(), self._reader.connect() as conn:
            rows = conn.execute(BY_IDS, {"b_ids": wanted}).all()
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

    def next_counter(self, vehicle_id: int, kid: str) -> int:
        with translated(), self._engine.begin() as conn:
            return take_counter(conn, self._dialect, vehicle_id, kid)

    def mark_sent(
        self, command_id: str, sending: Sending, publish: Publish | None = None
    ) -> Command | None:
        with translated(), self._engine.connect() as conn:
            vehicle_id = conn.execute(
                select(commands.c.vehicle_id).where(commands.c.id == command_id)
            ).scalar_one_or_none()
            conn.rollback()
        if vehicle_id is None:
            return None
        with translated(), vehicle_lock(self._engine, self._dialect, vehicle_id) as conn:
            with self._writing(conn):
                row = conn.execute(select(commands).where(commands.c.id == command_id)).first()
                sent = None if row is None else self._sent(conn, command_of(row), sending)
            if sent is not None and publish is not None:
                publish(sent)  # committed, and still under the vehicle's lock
        return sent

    def _sent(self, conn: Connection, command: Command, sending: Sending) -> Command | None:
        """Sign (when the platform does) and move a queued command to sent, in the caller's
        transaction."""
        signed, entry = self._signing(conn, command, sending)
        fields = {"counter": signed.counter, "kid": signed.kid, "sig": signed.sig}
        if not move(conn, command.id, State.SENT, sending.now_ms, fields):
            return None  # a counter taken stays taken: counters may skip, never repeat
        conn.execute(_AUDIT, audit_values(entry))
        row = conn.execute(BY_ID, {"b_id": command.id}).first()
        return None if row is None else command_of(row)

    def move(
        self, command_id: str, target: State, now_ms: int, audit: AuditEntry, **fields: Any
    ) -> Command | None:
        with translated(), self._begin() as conn:
            if not move(conn, command_id, target, now_ms, fields):
                return None
            conn.execute(_AUDIT, audit_values(audit))
            row = conn.execute(BY_ID, {"b_id": command_id}).first()
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
        with translated(), self._begin() as conn:
            conn.execute(_AUDIT, audit_values(entry))

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
        with translated(), self._engine.begin() as conn:
            return add_key(conn, vehicle_id, key)

    def keys(self, vehicle_id: int) -> list[VehicleKey]:
        with translated(), self._engine.connect() as conn:
            return keys_of(conn, vehicle_id)

    def remove_keys(
        self,
        vehicle_id: int,
        kids: Collection[str],
        audit: Callable[[VehicleKey], AuditEntry],
        ended: Callable[[Command], AuditEntry],
    ) -> tuple[list[VehicleKey], list[Command]]:
        with translated(), self._engine.begin() as conn:
            gone, ids = remove_keys(conn, vehicle_id, kids, audit, ended)
        return gone, self.by_ids(ids)

    def vin_of(self, vehicle_id: int) -> str | None:
        with translated(), self._engine.connect() as conn:
            return vin_of(conn, vehicle_id)

    def key_list(
        self, vehicle_id: int, publish: Callable[[str, int, list[VehicleKey]], None]
    ) -> int | None:
        with translated(), vehicle_lock(self._engine, self._dialect, vehicle_id) as conn:
            with conn.begin():
                vin = vin_of(conn, vehicle_id)
                if vin is None:
                    return None
                serial, keys = key_list(conn, self._dialect, vehicle_id)
            publish(vin, serial, keys)  # committed, and still under the vehicle's lock
        return serial


_ABSENT = object()


def _reported(decoded: Any) -> Value:
    """A twin value as the twin shows it (a list is a tuple)."""
    return tuple(decoded) if isinstance(decoded, list) else decoded


def _with_row(command: Command, row: int) -> Command:
    return replace(command, row=row)


__all__ = ["SqlCommands", "write_results"]
