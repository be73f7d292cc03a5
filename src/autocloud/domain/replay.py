"""Duplicate and replay detection by (vehicle, boot session `sid`, `seq`).

Each boot session of a vehicle numbers its messages with an increasing `seq`. A sliding
window (as in IPsec anti-replay, RFC 4303 §3.4.3) remembers which of the last `WINDOW`
numbers were seen, so out-of-order and store-and-forward delivery are accepted while a
resent or replayed message is recognised. A number older than the window cannot be told
apart from a replay and is refused as stale; a telematics unit flushes its store-and-forward
queue in order, so this only happens to messages more than `WINDOW` behind.
"""

import enum
from dataclasses import dataclass

WINDOW = 1024


class Verdict(enum.Enum):
    """Outcome of offering a sequence number to a window."""

    NEW = "new"
    DUPLICATE = "duplicate"
    STALE = "stale"


@dataclass(slots=True)
class SeqWindow:
    """Seen sequence numbers of one boot session: the highest, and a bitmap below it.

    Bit i of `bits` set means `top - i` was seen. `top == -1` means nothing seen yet.
    """

    top: int = -1
    bits: int = 0

    def offer(self, seq: int) -> Verdict:
        """Record `seq` if new and say whether it was new, a duplicate or too old to tell."""
        if seq > self.top:
            shift = seq - self.top
            # A jump past the window forgets everything (and never builds a huge integer).
            fresh = self.top < 0 or shift >= WINDOW
            self.bits = 1 if fresh else ((self.bits << shift) | 1) & _MASK
            self.top = seq
            return Verdict.NEW
        offset = self.top - seq
        if offset >= WINDOW:
            return Verdict.STALE
        bit = 1 << offset
        if self.bits & bit:
            return Verdict.DUPLICATE
        self.bits |= bit
        return Verdict.NEW

    def copy(self) -> "SeqWindow":
        return SeqWindow(self.top, self.bits)

    def to_bytes(self) -> bytes:
        """Compact form for storage: the bitmap, little-endian."""
        return self.bits.to_bytes(WINDOW // 8, "little")

    @classmethod
    def from_stored(cls, top: int, stored: bytes) -> "SeqWindow":
        return cls(top, int.from_bytes(stored, "little") & _MASK)


_MASK = (1 << WINDOW) - 1
