"""What differs between SQLite and PostgreSQL, handed to the shared SQL layer.

The dialect modules (`adapters/sqlite.py`, `adapters/postgres.py`) each build one of these;
everything else in `adapters/sql/` is written once.
"""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Table

HistoryTuple = tuple[int, int, int, float | None, str | None]  # vehicle, signal, ts, num, txt


@dataclass(frozen=True, slots=True)
class Dialect:
    name: str
    insert: Callable[[Table], Any]  # sqlalchemy.dialects.<x>.insert: has on_conflict_do_*
    write_history: Callable[[Connection, list[HistoryTuple]], None]
    """Upsert history rows (one per key) on the hot path, in the driver's fastest way."""
