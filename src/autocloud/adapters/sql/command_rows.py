"""Rows of the command tables: mapping to domain values, and the one conditional state change.

Shared by the command store (`adapters/sql/commands.py`) and the ingest writer of vehicle
results (`adapters/sql/command_results.py`), so both change a command the same way: one
`UPDATE ... WHERE state IN (allowed sources)`, and, when the command ends without being
carried out, the desired values it wrote into the twin are taken back in the same
transaction.
"""

import json
from functools import cache
from typing import Any

from sqlalchemy import Connection, Delete, Insert, Select, Update, bindparam, delete, select, update
from sqlalchemy.engine import Row

from autocloud.adapters.sql.dialect import Dialect
from autocloud.adapters.sql.schema import desired
from autocloud.adapters.sql.schema_commands import command_counters, commands
from autocloud.domain.command_records import UNDONE, AuditEntry, Command, desired_by
from autocloud.domain.commands import TERMINAL, State, sources_of

# The column that records when a command reached each state.
_TIME_OF: dict[State, str] = {
    State.SENT: "sent_ms",
    State.DELIVERED: "delivered_ms",
    **{s: "finished_ms" for s in TERMINAL},
}
_WRITABLE = frozenset({"counter", "kid", "sig", "reason", "result"})


def command_of(row: Row[Any]) -> Command:
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


def audit_values(entry: AuditEntry) -> dict[str, Any]:
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


def audit_entry(row: Row[Any]) -> AuditEntry:
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


# Statements of the hot path (every command, every result), built once: SQLAlchemy compiles
# a statement object once and reuses it, while building one per call (`select(...).where(x
# == value)`) cost 4-7 times the execution itself (measured on SQLite: 270-440 us to build,
# look up and run, 60-75 us prebuilt). Parameters are named `b_*`: SQLAlchemy keeps column
# names for the values of an INSERT or UPDATE.
BY_ID: Select[Any] = select(commands).where(commands.c.id == bindparam("b_id"))
BY_IDS: Select[Any] = select(commands).where(commands.c.id.in_(bindparam("b_ids", expanding=True)))


@cache
def _move_statement(target: State, fields: frozenset[str]) -> Update:
    """`UPDATE commands SET state, <time of target>, fields WHERE id AND state IN sources`."""
    values: dict[str, Any] = {"state": target.value, _TIME_OF[target]: bindparam("b_at")}
    values.update({f: bindparam(f"b_{f}") for f in sorted(fields)})
    return (
        update(commands)
        .where(
            commands.c.id == bindparam("b_id"),
            commands.c.state.in_(sorted(s.value for s in sources_of(target))),
        )
        .values(**values)
    )


def move(
    conn: Connection, command_id: str, target: State, now_ms: int, fields: dict[str, Any]
) -> bool:
    """One conditional UPDATE; True when the command moved. A move to failed, rejected or
    expired also clears the desired values the command set (`clear_desired`)."""
    unknown = set(fields) - _WRITABLE
    if unknown:
        raise TypeError(f"cannot write {sorted(unknown)} with a state change")
    params: dict[str, Any] = {"b_id": command_id, "b_at": now_ms}
    params.update({f"b_{k}": v for k, v in fields.items()})
    if "result" in fields:
        params["b_result"] = json.dumps(fields["result"])
    done = conn.execute(_move_statement(target, frozenset(fields)), params)
    moved = done.rowcount == 1
    if moved and target in UNDONE:
        clear_desired(conn, command_id)
    return moved


@cache
def _counter_upsert(insert: Any) -> Insert:
    """The counter upsert of a dialect (`insert` is the dialect's `insert` construct)."""
    upsert = insert(command_counters).values(
        vehicle_id=bindparam("b_vehicle"), kid=bindparam("b_kid"), counter=1
    )
    upsert = upsert.on_conflict_do_update(
        index_elements=[command_counters.c.vehicle_id, command_counters.c.kid],
        set_={"counter": command_counters.c.counter + 1},
    ).returning(command_counters.c.counter)
    return upsert  # type: ignore[no-any-return]


def take_counter(conn: Connection, dialect: Dialect, vehicle_id: int, kid: str) -> int:
    """Take the next signing counter of (vehicle, kid), starting at 1, in the caller's
    transaction: one upsert that returns the new value (it holds the row until commit).
    The same row and arithmetic as `command_keys.next_counter`, in one statement instead of
    three, because every command sent to an online vehicle takes one in the API call."""
    upsert = _counter_upsert(dialect.insert)
    value: int = conn.execute(upsert, {"b_vehicle": vehicle_id, "b_kid": kid}).scalar_one()
    return value


_CLEAR_DESIRED: Delete = delete(desired).where(
    desired.c.vehicle_id
    == select(commands.c.vehicle_id).where(commands.c.id == bindparam("b_id")).scalar_subquery(),
    desired.c.set_by == bindparam("b_by"),
)


def clear_desired(conn: Connection, command_id: str) -> int:
    """Delete the twin's desired values still set by this command (a later command or
    operator that set the same signal since is left alone); how many were deleted."""
    done = conn.execute(_CLEAR_DESIRED, {"b_id": command_id, "b_by": desired_by(command_id)})
    return int(done.rowcount or 0)
