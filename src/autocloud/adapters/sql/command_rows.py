"""Rows of the command tables: mapping to domain values, and the one conditional state change.

Shared by the command store (`adapters/sql/commands.py`) and the ingest writer of vehicle
results (`adapters/sql/command_results.py`), so both change a command the same way: one
`UPDATE ... WHERE state IN (allowed sources)`, and, when the command ends without being
carried out, the desired values it wrote into the twin are taken back in the same
transaction.
"""

import json
from typing import Any

from sqlalchemy import Connection, delete, select, update
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


def move(
    conn: Connection, command_id: str, target: State, now_ms: int, fields: dict[str, Any]
) -> bool:
    """One conditional UPDATE; True when the command moved. A move to failed, rejected or
    expired also clears the desired values the command set (`clear_desired`)."""
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
    moved = done.rowcount == 1
    if moved and target in UNDONE:
        clear_desired(conn, command_id)
    return moved


def take_counter(conn: Connection, dialect: Dialect, vehicle_id: int, kid: str) -> int:
    """Take the next signing counter of (vehicle, kid), starting at 1, in the caller's
    transaction: one upsert that returns the new value (it holds the row until commit).
    The same row and arithmetic as `command_keys.next_counter`, in one statement instead of
    three, because every command sent to an online vehicle takes one in the API call."""
    upsert = dialect.insert(command_counters).values(vehicle_id=vehicle_id, kid=kid, counter=1)
    upsert = upsert.on_conflict_do_update(
        index_elements=[command_counters.c.vehicle_id, command_counters.c.kid],
        set_={"counter": command_counters.c.counter + 1},
    ).returning(command_counters.c.counter)
    value: int = conn.execute(upsert).scalar_one()
    return value


def clear_desired(conn: Connection, command_id: str) -> int:
    """Delete the twin's desired values still set by this command (a later command or
    operator that set the same signal since is left alone); how many were deleted."""
    vehicle = select(commands.c.vehicle_id).where(commands.c.id == command_id).scalar_subquery()
    done = conn.execute(
        delete(desired).where(
            desired.c.vehicle_id == vehicle, desired.c.set_by == desired_by(command_id)
        )
    )
    return int(done.rowcount or 0)
