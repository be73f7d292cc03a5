"""Time as the platform sees it: integer milliseconds since the Unix epoch (UTC)."""

import time
from typing import Protocol


class Clock(Protocol):
    """Source of the current time; tests pass a fixed or stepping clock."""

    def now_ms(self) -> int:
        """Milliseconds since the epoch."""
        ...


class SystemClock:
    """The machine's wall clock."""

    def now_ms(self) -> int:
        return time.time_ns() // 1_000_000


class FixedClock:
    """A clock that only moves when told to; for tests."""

    def __init__(self, now_ms: int) -> None:
        self._now = now_ms

    def now_ms(self) -> int:
        return self._now

    def advance(self, ms: int) -> None:
        self._now += ms
