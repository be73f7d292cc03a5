"""What differs between SQLite and PostgreSQL, handed to the shared SQL layer.

The dialect modules (`adapters/sqlite.py`, `adapters/postgres.py`) each build one of these;
everything else in `adapters/sql/` is written once.
"""

from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy import Connection, Table
from sqlalchemy.sql.elements import ColumnElement

HistoryTuple = tuple[int, int, str]  # vehicle, ts, body (JSON object keyed by signal id)
# vehicle, body (JSON: signal id -> value), meta (JSON: signal id -> [ts, received_ms]),
# newest and oldest ts among the row's signals
TwinTuple = tuple[int, str, str, int, int]
WindowTuple = tuple[int, str, int, bytes, int]  # vehicle, sid, top, bits, updated_ms

RowWriter = Callable[[Connection, list[Any]], None]


@dataclass(frozen=True, slots=True)
class HotWrites:
    """The ingest transaction's per-signal upserts, in each driver's fastest form.

    At ingest rates SQLAlchemy's per-row parameter processing costs more than the database's
    own work, so these three go straight to the driver (rows as tuples, one key each, in key
    order). Everything else goes through SQLAlchemy Core.
    """

    history: Callable[[Connection, list[HistoryTuple]], None]
    """Insert history rows; into a row already there (same vehicle and ts) the new body is
    merged, its signals winning (a redelivery rewrites the same values)."""
    twin: Callable[[Connection, list[TwinTuple]], Collection[int]]
    """Merge each row into its vehicle's twin row unless the stored row holds a signal newer
    than the row's oldest; return the vehicles skipped (a superset is allowed), which the
    caller merges signal by signal (`twin_rows.merge_older`)."""
    windows: Callable[[Connection, list[WindowTuple]], None]
    """Upsert replay windows."""


@dataclass(frozen=True, slots=True)
class SampleBody:
    """SQL over history's JSON body (`{"<signal id>": value, …}`) in each database's terms."""

    value_json: Callable[[Any, int], ColumnElement[Any]]
    """The JSON text of one signal's value in a body, NULL when the sample lacks it."""
    number: Callable[[Any, int], ColumnElement[Any]]
    """One signal's value as a float (booleans 0/1), NULL for other types or when absent."""
    has_any: Callable[[Any, list[int]], ColumnElement[bool]]
    """Whether a body holds at least one of the signals."""


@dataclass(frozen=True, slots=True)
class Dialect:
    name: str
    insert: Callable[[Table], Any]  # sqlalchemy.dialects.<x>.insert: has on_conflict_do_*
    hot: HotWrites
    body: SampleBody


class DeferredSync(Protocol):
    """How a database commits ingest transactions without waiting for its disk, and makes
    them durable afterwards in one go (SQLite: `adapters/sqlite_sync.py`)."""

    def relax(self, conn: Connection) -> None:
        """Before the transaction's first write: its commit is visible at once, durable later."""

    def sync(self) -> None:
        """Make every commit so far durable; raise `DurabilityLost` if the disk refuses."""

    def checkpoint(self) -> None:
        """Housekeeping after a sync whose acknowledgements are out (SQLite: fold the WAL
        into the database file, after every sync round); `DurabilityLost` on a disk error."""

    def close(self) -> None: ...
