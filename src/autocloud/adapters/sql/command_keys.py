"""Vehicles' command keys in SQL, and the per-vehicle lock that orders what reaches a car.

What: enrolling, listing and revoking keys (`command_keys` table); a revocation also ends the
vehicle's open commands signed with the revoked keys (`expired`, so a queued one is never
sent) and writes its audit entries, in one transaction. `key_list` takes the next serial of
the vehicle's key list (a row of `command_counters` under the name `KEY_LIST_COUNTER`) with
the keys as they are after every committed change. `write_key_list_results` is the ingest
writer of the cars' answers to those lists (`keys/result`), and `key_list_state` compares
the newest serial with what the car confirmed.

`vehicle_lock` is held while a counter or serial is taken, committed and published: on
PostgreSQL a session-level advisory lock on (LOCK_CLASS, vehicle id), so two API processes
hand a vehicle's messages to the broker in counter order; on SQLite the connection only
(SQLite serves one platform process; its in-process lock, `Delivery`, orders the sends).
"""

from collections.abc import Callable, Collection, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection, Engine, delete, or_, select, update
from sqlalchemy.engine import Row
from sqlalchemy.exc import DBAPIError, IntegrityError

from autocloud.adapters.sql.command_rows import audit_values, command_of, move
from autocloud.adapters.sql.dialect import Dialect
from autocloud.adapters.sql.errors import translated
from autocloud.adapters.sql.schema import vehicles
from autocloud.adapters.sql.schema_commands import (
    command_audit,
    command_counters,
    command_keys,
    commands,
)
from autocloud.adapters.sql.schema_key_lists import key_list_acks
from autocloud.domain.command_keyset import KeyListState
from autocloud.domain.command_records import AuditEntry, Command, VehicleKey
from autocloud.domain.commands import OPEN, State
from autocloud.domain.errors import Conflict, StoreUnavailable
from autocloud.domain.protocol import KeyListResult, KeyListStatus
from autocloud.domain.records import Reply

KEY_LIST_COUNTER = "key-list"  # `command_counters.kid` of a vehicle's key-list serial
LOCK_CLASS = 0x636D64  # first key of the advisory locks of command sending ("cmd")
LOCK_TIMEOUT_MS = 5000


@contextmanager
def vehicle_lock(engine: Engine, dialect: Dialect, vehicle_id: int) -> Iterator[Connection]:
    """A connection that holds the vehicle's send lock until the block ends.

    On PostgreSQL the lock is taken and given back outside any transaction, one round trip
    each (a bounded wait, the lock, and the setting back in one multi-statement query);
    the block's own transactions come and go under it. It used to take five: `SET LOCAL`,
    the lock and a COMMIT, then the unlock and a COMMIT, on every command sent.
    """
    with engine.connect() as conn:
        if dialect.name != "postgresql":
            yield conn
            return
        vehicle = int(vehicle_id)  # formatted into the SQL: an int, nothing else
        with translated():
            # Bounded: a holder stuck on a dead session must not stall every sender forever.
            # On a timeout the statement's implicit transaction is rolled back, the setting
            # with it.
            lock = (
                f"SET lock_timeout = '{LOCK_TIMEOUT_MS}ms'; "
                f"SELECT pg_advisory_lock({LOCK_CLASS}, {vehicle}); RESET lock_timeout"
            )
            try:
                _outside_transactions(conn, lock)
            except DBAPIError as exc:
                if exc.connection_invalidated:
                    raise
                raise StoreUnavailable(
                    f"vehicle {vehicle_id}'s send lock is held elsewhere for over "
                    f"{LOCK_TIMEOUT_MS / 1000:.0f} s; the send is retried later"
                ) from exc
            conn.execution_options(isolation_level=conn.default_isolation_level)
        try:
            yield conn
        finally:
            try:
                if conn.in_transaction():
                    conn.rollback()
                _outside_transactions(conn, f"SELECT pg_advisory_unlock({LOCK_CLASS}, {vehicle})")
            except BaseException:
                # Not unlocked: closing the session releases its lock; back in the pool it
                # would block every later send to this vehicle, in every process.
                conn.invalidate()
                raise


def _outside_transactions(conn: Connection, sql: str) -> None:
    """Run `sql` on `conn` in autocommit: no BEGIN, no COMMIT (the "commit" below ends only
    SQLAlchemy's own bookkeeping). Left in autocommit: the caller sets it back, or the pool
    when the connection is returned."""
    conn.execution_options(isolation_level="AUTOCOMMIT")
    conn.exec_driver_sql(sql)
    conn.commit()


def key_of(r: Row[Any]) -> VehicleKey:
    return VehicleKey(
        r.kid, bytes.fromhex(r.public_key), r.label, r.added_ms, r.added_by, r.owner_id
    )


def add_key(conn: Connection, vehicle_id: int, key: VehicleKey) -> VehicleKey:
    values = {
        "vehicle_id": vehicle_id,
        "kid": key.kid,
        "public_key": key.public_key.hex(),
        "label": key.label,
        "owner_id": key.owner_id,
        "added_ms": key.added_ms,
        "added_by": key.added_by,
    }
    try:
        conn.execute(command_keys.insert().values(**values))
    except IntegrityError:
        raise Conflict(f"key {key.kid} is enrolled with this vehicle already") from None
    return key


def keys_of(conn: Connection, vehicle_id: int) -> list[VehicleKey]:
    query = (
        select(command_keys)
        .where(command_keys.c.vehicle_id == vehicle_id)
        .order_by(command_keys.c.added_ms, command_keys.c.kid)
    )
    return [key_of(r) for r in conn.execute(query)]


def remove_keys(
    conn: Connection,
    vehicle_id: int,
    kids: Collection[str],
    audit: Callable[[VehicleKey], AuditEntry],
    ended: Callable[[Command], AuditEntry],
) -> tuple[list[VehicleKey], list[str]]:
    """Delete these keys of the vehicle and expire its open commands they signed (with
    `ended`'s audit entry and reason); the keys that were there and the ended commands."""
    if not kids:
        return [], []
    mine = (command_keys.c.vehicle_id == vehicle_id) & command_keys.c.kid.in_(sorted(kids))
    gone = [key_of(r) for r in conn.execute(select(command_keys).where(mine))]
    if not gone:
        return [], []
    conn.execute(delete(command_keys).where(mine))
    for key in gone:
        conn.execute(command_audit.insert().values(**audit_values(audit(key))))
    signed = (
        (commands.c.vehicle_id == vehicle_id)
        & commands.c.kid.in_([k.kid for k in gone])
        & commands.c.state.in_([s.value for s in OPEN])
    )
    done: list[str] = []
    for row in conn.execute(select(commands).where(signed)).all():
        command = command_of(row)
        entry = ended(command)
        if move(conn, command.id, State.EXPIRED, entry.at_ms, {"reason": entry.detail}):
            conn.execute(command_audit.insert().values(**audit_values(entry)))
            done.append(command.id)
    return gone, done


def next_counter(conn: Connection, dialect: Dialect, vehicle_id: int, kid: str) -> int:
    """Take the next counter of (vehicle, kid), starting at 1, in the caller's transaction
    (the UPDATE holds the row until it commits)."""
    key = (command_counters.c.vehicle_id == vehicle_id) & (command_counters.c.kid == kid)
    seed = dialect.insert(command_counters).values(vehicle_id=vehicle_id, kid=kid, counter=0)
    conn.execute(seed.on_conflict_do_nothing())
    conn.execute(update(command_counters).where(key).values(counter=command_counters.c.counter + 1))
    value: int = conn.execute(select(command_counters.c.counter).where(key)).scalar_one()
    return value


def key_list(conn: Connection, dialect: Dialect, vehicle_id: int) -> tuple[int, list[VehicleKey]]:
    """The next serial of the vehicle's key list and its keys, in the caller's transaction."""
    serial = next_counter(conn, dialect, vehicle_id, KEY_LIST_COUNTER)
    return serial, keys_of(conn, vehicle_id)


def vin_of(conn: Connection, vehicle_id: int) -> str | None:
    vin: str | None = conn.execute(
        select(vehicles.c.vin).where(vehicles.c.id == vehicle_id)
    ).scalar_one_or_none()
    return vin


# --- the cars' answers to key lists ------------------------------------------------------------


def write_key_list_results(conn: Connection, dialect: Dialect, replies: Sequence[Reply]) -> None:
    """Record each car's answer to a key list, in the ingest transaction.

    `applied` raises the vehicle's confirmed serial (never lowers it: a late answer about an
    older list changes nothing); `refused` records the list and the car's reason. Each
    change (not a repeat: a car answers the retained list again at each reconnect) goes in
    the command audit log as `key_list_applied` / `key_list_refused`; a claim to have
    applied a serial the platform never sent is audited as `key_list_unknown` and changes
    nothing. Never raises on what a car says.
    """
    acks = key_list_acks.c
    for reply in replies:
        m = reply.message
        assert isinstance(m, KeyListResult)
        vid = reply.vehicle_id
        conn.execute(dialect.insert(key_list_acks).values(vehicle_id=vid).on_conflict_do_nothing())
        if m.status is KeyListStatus.APPLIED:
            assert m.serial is not None  # the protocol's envelope check
            sent = _sent_serial(conn, vid)
            if sent is None or m.serial > sent:
                newest = "none was sent" if sent is None else f"the newest sent is {sent}"
                detail = f"the car claims it applied key list {m.serial}; {newest}"
                _audit(conn, reply, "key_list_unknown", detail)
                continue
            newer = or_(acks.applied_serial.is_(None), acks.applied_serial < m.serial)
            values: dict[str, Any] = {
                "applied_serial": m.serial,
                "applied_ts": m.ts,
                "applied_ms": reply.received_ms,
            }
            action, detail = "key_list_applied", f"the car applied key list {m.serial}"
        else:
            newer = or_(
                acks.refused_reason.is_(None),
                acks.refused_serial.is_distinct_from(m.serial),
                acks.refused_reason != m.reason,
            ) & or_(acks.refused_ts.is_(None), acks.refused_ts <= m.ts)
            values = {
                "refused_serial": m.serial,
                "refused_reason": m.reason,
                "refused_ts": m.ts,
                "refused_ms": reply.received_ms,
            }
            which = "an unreadable key list" if m.serial is None else f"key list {m.serial}"
            action, detail = "key_list_refused", f"the car refused {which}: {m.reason}"
        done = conn.execute(
            update(key_list_acks).where(acks.vehicle_id == vid, newer).values(**values)
        )
        if done.rowcount:
            _audit(conn, reply, action, detail)


def _audit(conn: Connection, reply: Reply, action: str, detail: str) -> None:
    entry = AuditEntry(
        reply.received_ms, f"vehicle {reply.vin}", action, detail, reply.brand, reply.vin
    )
    conn.execute(command_audit.insert().values(**audit_values(entry)))


def _sent_serial(conn: Connection, vehicle_id: int) -> int | None:
    """The serial of the newest key list taken for the vehicle (None: none yet)."""
    serial: int | None = conn.execute(
        select(command_counters.c.counter).where(
            command_counters.c.vehicle_id == vehicle_id,
            command_counters.c.kid == KEY_LIST_COUNTER,
        )
    ).scalar_one_or_none()
    return serial


def key_list_state(conn: Connection, vehicle_id: int) -> KeyListState:
    """The newest serial sent to the vehicle and what the car answered."""
    serial = _sent_serial(conn, vehicle_id)
    row = conn.execute(
        select(key_list_acks).where(key_list_acks.c.vehicle_id == vehicle_id)
    ).first()
    if row is None:
        return KeyListState(serial)
    return KeyListState(
        serial,
        row.applied_serial,
        row.applied_ts,
        row.applied_ms,
        row.refused_serial,
        row.refused_reason,
        row.refused_ts,
        row.refused_ms,
    )


class SqlKeyLists:
    """KeyListStore on any SQLAlchemy engine."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def key_list_state(self, vehicle_id: int) -> KeyListState:
        with translated(), self._engine.connect() as conn:
            return key_list_state(conn, vehicle_id)
