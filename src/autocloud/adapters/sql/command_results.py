"""The ingest writer of vehicle command results (`commands/result`), in the ingest transaction.

Registered in `adapters/sql/store.py:ingest_writers()` for `CommandResult` replies. Each
result moves its command with the same conditional change as the store (`command_rows.move`):
a `failed` or `rejected` result also takes back the desired values the command wrote.

A batch is written in a fixed number of statements, not a few per result: one read of the
batch's commands, one conditional UPDATE per command (a car's `accepted` and `succeeded`
usually arrive in the same batch: the command moves once, to where both take it), and one
insert of every audit entry. The UPDATE is guarded by the state that was read; a command
that changed in between (an expiry, a revocation) has its results written one by one, as
if they came alone. This write is what the long poll of a command waits for.
"""

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from sqlalchemy import Connection, Update, bindparam, select, update

from autocloud.adapters.sql.command_rows import clear_desired, move
from autocloud.adapters.sql.dialect import Dialect
from autocloud.adapters.sql.schema_commands import command_audit, commands
from autocloud.domain.command_records import UNDONE
from autocloud.domain.commands import TERMINAL, State, may_move
from autocloud.domain.protocol import CommandResult, CommandStatus
from autocloud.domain.records import Reply

log = logging.getLogger(__name__)

_STATUS_TARGET = {
    CommandStatus.ACCEPTED: State.DELIVERED,
    CommandStatus.SUCCEEDED: State.SUCCEEDED,
    CommandStatus.FAILED: State.FAILED,
    CommandStatus.REJECTED: State.REJECTED,
}
_TIME_OF = {State.DELIVERED: "delivered_ms", **{s: "finished_ms" for s in TERMINAL}}

_READ = select(
    commands.c.id, commands.c.vehicle_id, commands.c.state, commands.c.brand_id, commands.c.name
).where(commands.c.id.in_(bindparam("b_ids", expanding=True)))
_AUDIT = command_audit.insert()


@cache
def _advance(columns: frozenset[str]) -> Update:
    """`UPDATE commands SET state, columns WHERE id = :b_id AND state = :b_seen`."""
    values: dict[str, Any] = {"state": bindparam("b_state")}
    values.update({c: bindparam(f"b_{c}") for c in sorted(columns)})
    return (
        update(commands)
        .where(commands.c.id == bindparam("b_id"), commands.c.state == bindparam("b_seen"))
        .values(**values)
    )


@dataclass
class _Moves:
    """What a batch's results do to one command: where it ends, what is set, the audit."""

    row: Any  # (id, vehicle_id, state, brand_id, name) as read
    state: State
    columns: dict[str, Any] = field(default_factory=dict)
    audit: list[dict[str, Any]] = field(default_factory=list)
    replies: list[Reply] = field(default_factory=list)


def write_results(conn: Connection, dialect: Dialect, replies: Sequence[Reply]) -> None:
    """Move each command its result names, in the ingest transaction.

    A result is vehicle input: one for a command the vehicle was never sent, or one the
    lifecycle does not allow (a late answer to an expired command), is recorded in the
    audit log and otherwise ignored; it never raises.
    """
    ids = list(dict.fromkeys(_message(r).id for r in replies))
    found = {row.id: row for row in conn.execute(_READ, {"b_ids": ids})} if ids else {}
    audit: list[dict[str, Any] | _Moves] = []  # in the order of the results
    moves: dict[str, _Moves] = {}
    for reply in replies:
        message = _message(reply)
        row = found.get(message.id)
        if row is None or row.vehicle_id != reply.vehicle_id:
            audit.append(_unknown(reply, message))
            continue
        command = moves.get(row.id)
        if command is None:
            command = moves[row.id] = _Moves(row, State(row.state))
            audit.append(command)
        command.replies.append(reply)
        target = _STATUS_TARGET[message.status]
        if not may_move(command.state, target):
            command.audit.append(_ignored(reply, message, row, command.state))
            continue
        command.state = target
        command.columns[_TIME_OF[target]] = reply.received_ms
        if target in TERMINAL:
            command.columns["reason"] = message.reason
            command.columns["result"] = json.dumps(message.data)
        detail = message.status.value + (f": {message.reason}" if message.reason else "")
        command.audit.append(_entry(reply, row, target.value, detail))
    for command in moves.values():
        if command.columns and not _apply(conn, command):
            command.audit = _one_by_one(conn, command.replies)  # it changed since the read
    rows: list[dict[str, Any]] = []
    for entry in audit:
        rows.extend(entry.audit if isinstance(entry, _Moves) else [entry])
    if rows:
        conn.execute(_AUDIT, rows)


def _apply(conn: Connection, command: _Moves) -> bool:
    """Move the command to its final state if it is still in the state that was read."""
    params = {f"b_{c}": v for c, v in command.columns.items()}
    params.update(b_id=command.row.id, b_seen=command.row.state, b_state=command.state.value)
    done = conn.execute(_advance(frozenset(command.columns)), params)
    if done.rowcount != 1:
        return False
    if command.state in UNDONE:
        clear_desired(conn, command.row.id)
    return True


def _one_by_one(conn: Connection, replies: list[Reply]) -> list[dict[str, Any]]:
    """The results of one command applied in turn, each to the command as it is now; their
    audit entries."""
    out: list[dict[str, Any]] = []
    for reply in replies:
        message = _message(reply)
        row = conn.execute(_READ, {"b_ids": [message.id]}).first()
        if row is None:  # deleted meanwhile (its vehicle went)
            out.append(_unknown(reply, message))
            continue
        target, current = _STATUS_TARGET[message.status], State(row.state)
        fields: dict[str, Any] = {}
        if target in TERMINAL:
            fields = {"reason": message.reason, "result": message.data}
        if not may_move(current, target) or not move(
            conn, row.id, target, reply.received_ms, fields
        ):
            out.append(_ignored(reply, message, row, current))
            continue
        detail = message.status.value + (f": {message.reason}" if message.reason else "")
        out.append(_entry(reply, row, target.value, detail))
    return out


def _message(reply: Reply) -> CommandResult:
    message = reply.message
    assert isinstance(message, CommandResult)
    return message


def _entry(reply: Reply, row: Any, action: str, detail: str) -> dict[str, Any]:
    return {
        "at_ms": reply.received_ms,
        "caller": f"vehicle {reply.vin}",
        "vin": reply.vin,
        "brand_id": row.brand_id,
        "command_id": row.id,
        "name": row.name,
        "action": action,
        "detail": detail,
    }


def _ignored(reply: Reply, message: CommandResult, row: Any, current: State) -> dict[str, Any]:
    detail = f"{message.status.value} arrived for a command already {current.value}"
    return _entry(reply, row, "ignored_result", detail)


def _unknown(reply: Reply, message: CommandResult) -> dict[str, Any]:
    log.warning("%s answered unknown command %r (audit log)", reply.vin, message.id)
    return {
        "at_ms": reply.received_ms,
        "caller": f"vehicle {reply.vin}",
        "vin": reply.vin,
        "brand_id": reply.brand,
        "command_id": message.id[:64],
        "name": None,
        "action": "unknown_result",
        "detail": f"{message.status.value} for a command this vehicle was never sent",
    }
