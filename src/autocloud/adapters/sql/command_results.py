"""The ingest writer of vehicle command results (`commands/result`), in the ingest transaction.

Registered in `adapters/sql/store.py:ingest_writers()` for `CommandResult` replies. Each
result moves its command with the same conditional change as the store (`command_rows.move`):
a `failed` or `rejected` result also takes back the desired values the command wrote.
"""

import logging
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, select

from autocloud.adapters.sql.command_rows import move
from autocloud.adapters.sql.dialect import Dialect
from autocloud.adapters.sql.schema_commands import command_audit, commands
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


def write_results(conn: Connection, dialect: Dialect, replies: Sequence[Reply]) -> None:
    """Move each command its result names, in the ingest transaction.

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
        if not may_move(current, target) or not move(
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
