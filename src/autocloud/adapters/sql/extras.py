"""Writers for the parts of an ingest batch that features beyond telemetry add.

A `WriteBatch` carries vehicle replies (command results, diagnostic responses) and `extra`
records (alert transitions…) that must be durable in the same transaction as the telemetry
that produced them, before the broker gets its PUBACK. Each feature's SQL module provides a
writer for its record type; `SqlStore` lists them in one table (`Writers`). A record with no
writer is a defect, not bad input: committing it raises, so ingest isolates the message as
`internal_error` rather than acknowledging something it never stored.
"""

from collections import defaultdict
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import Connection

from autocloud.adapters.sql.dialect import Dialect
from autocloud.domain.records import Reply, WriteBatch

Writer = Callable[[Connection, Dialect, Sequence[Any]], None]


class NoWriter(TypeError):
    """A batch holds a record type that no feature registered a writer for."""


class Writers:
    """Writers by type: replies by their message's type, extras by the record's own type."""

    def __init__(self) -> None:
        self.replies: dict[type, Writer] = {}
        self.extra: dict[type, Writer] = {}

    def reply(self, message_type: type, writer: Writer) -> None:
        self.replies[message_type] = writer

    def record(self, record_type: type, writer: Writer) -> None:
        self.extra[record_type] = writer

    def write(self, conn: Connection, dialect: Dialect, batch: WriteBatch) -> None:
        """Write the batch's replies and extras (inside the caller's transaction)."""
        for writer, items in _grouped(self.replies, batch.replies, _message_type):
            writer(conn, dialect, items)
        for writer, items in _grouped(self.extra, batch.extra, type):
            writer(conn, dialect, items)


def _message_type(reply: Reply) -> type:
    return type(reply.message)


def _grouped(
    table: dict[type, Writer], items: Sequence[Any], key: Callable[[Any], type]
) -> list[tuple[Writer, list[Any]]]:
    groups: dict[type, list[Any]] = defaultdict(list)
    for item in items:
        groups[key(item)].append(item)
    out = []
    for kind, members in groups.items():
        writer = table.get(kind)
        if writer is None:
            raise NoWriter(f"no store writer for {kind.__name__} records")
        out.append((writer, members))
    return out
