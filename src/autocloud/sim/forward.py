"""Store-and-forward: what a telematics unit keeps while offline and sends on reconnect.

What: :class:`SeqCounter` numbers a boot session's messages (``sid``/``seq`` of vehicle
protocol v1), :func:`telemetry_body`/:func:`event_body` build v1 message bodies, and
:class:`StoreAndForward` buffers samples and events while the car has no connection
(a tunnel, a parking garage) and turns them, on reconnect, into v1 messages — oldest first,
consecutive samples batched into ``samples`` arrays.

Why this shape: the platform loses nothing only if the backlog arrives complete and in
order (its duplicate check remembers 1,024 sequence numbers below the highest seen, so a
FIFO flush is required, see docs/protocol.md), and batching keeps a 15-minute backlog from
costing 900 messages. Sequence numbers are assigned at flush time, from the session that is
current then, so a backlog survives a reboot of the unit.

Pure: no clock, no I/O; bodies are plain dicts, encoded with msgspec only when asked.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Final

import msgspec

from autocloud.domain.protocol import PROTOCOL_VERSION, Topic

__all__ = [
    "MAX_BODY_BYTES",
    "Outbound",
    "SeqCounter",
    "StoreAndForward",
    "event_body",
    "numbered_sample_body",
    "single_sample_body",
    "telemetry_body",
]

MAX_BODY_BYTES: Final = 120_000  # under the platform's 131,072-byte payload limit
DAY_AT_1HZ: Final = 86_400
_ENVELOPE_BYTES: Final = 200  # generous allowance for v, sid, seq and the brackets
_encode = msgspec.json.encode


class SeqCounter:
    """The message numbering of one boot session: a fixed ``sid``, ``seq`` from 0 upwards."""

    __slots__ = ("_next", "_prefix", "sid")

    def __init__(self, sid: str, start: int = 0) -> None:
        if not 1 <= len(sid) <= 64 or not all("\x21" <= c <= "\x7e" for c in sid):
            raise ValueError("sid must be 1-64 printable ASCII characters without spaces")
        if start < 0:
            raise ValueError("seq starts at 0 or above")
        self.sid = sid
        self._next = start
        # what every telemetry payload of this session starts with (`sample_payload`)
        self._prefix = b'{"v":' + _encode(PROTOCOL_VERSION) + b',"sid":' + _encode(sid) + b',"seq":'

    def take(self) -> int:
        """The next sequence number (each is handed out once)."""
        seq = self._next
        self._next += 1
        return seq

    @property
    def next_seq(self) -> int:
        """The number :meth:`take` will return next."""
        return self._next

    def sample_payload(self, ts_ms: int, signals: Mapping[str, Any]) -> bytes:
        """``_encode(single_sample_body(self, ts_ms, signals))``: the same bytes (and the
        same number taken), without building the body's dicts and list.

        A car online sends one of these every second, so the envelope is a template of this
        session's bytes with the number, the time and the encoded signals put in (msgspec
        writes a dict as ``{"key":value,...}`` with no spaces, so encoding the parts and
        the whole give the same bytes; ``tests/sim/test_faults.py`` compares them).
        """
        seq = self._next
        self._next = seq + 1
        if type(ts_ms) is not int or type(seq) is not int:  # only ints go through "%d"
            return _encode(_telemetry_numbered(self.sid, seq, ts_ms, signals))
        plain = signals if type(signals) is dict else dict(signals)
        return (
            self._prefix
            + b'%d,"samples":[{"ts":%d,"signals":' % (seq, ts_ms)
            + _encode(plain)
            + b"}]}"
        )


def telemetry_body(counter: SeqCounter, ts_ms: int, signals: Mapping[str, Any]) -> dict[str, Any]:
    """A v1 telemetry body with one inline sample, numbered by ``counter``."""
    return {
        "v": PROTOCOL_VERSION,
        "sid": counter.sid,
        "seq": counter.take(),
        "ts": ts_ms,
        "signals": dict(signals),
    }


def event_body(
    counter: SeqCounter, ts_ms: int, event_type: str, data: Mapping[str, Any]
) -> dict[str, Any]:
    """A v1 event body (e.g. ``dtc.raised``), numbered by ``counter``."""
    return {
        "v": PROTOCOL_VERSION,
        "sid": counter.sid,
        "seq": counter.take(),
        "ts": ts_ms,
        "type": event_type,
        "data": dict(data),
    }


@dataclass(slots=True)  # not frozen: a frozen dataclass is slower to build (one per message)
class Outbound:
    """A message to publish: its sub-topic (telemetry or events) and its v1 body."""

    kind: Topic
    body: dict[str, Any]

    def payload(self) -> bytes:
        """The body as JSON bytes, as published."""
        return _encode(self.body)


# What the buffer holds, as plain tuples (one is built per car and second): a sample is
# (ts, signals), an event (ts, type, data).
_Sample = tuple[int, Mapping[str, Any]]
_Event = tuple[int, str, Mapping[str, Any]]


class StoreAndForward:
    """A FIFO of samples and events kept while offline, flushed oldest first.

    ``capacity`` (default: a day of 1 Hz samples) bounds memory. The platform must lose
    nothing, and the simulator's outages last at most 15 minutes, so the bound is never
    reached in practice; if it were, the oldest entries are dropped and counted in
    :attr:`dropped` — stale data matters least, and a test can assert ``dropped == 0``.
    Entries are kept as given: do not mutate a signals dict after adding it (the messages
    of :meth:`flush` carry the very dicts added, not copies).
    """

    __slots__ = ("_entries", "capacity", "dropped")

    def __init__(self, capacity: int = DAY_AT_1HZ) -> None:
        if capacity < 1:
            raise ValueError("capacity must be at least 1")
        self._entries: deque[_Sample | _Event] = deque()
        self.capacity = capacity
        self.dropped = 0

    def __len__(self) -> int:
        return len(self._entries)

    def __iter__(self) -> Iterator[tuple[int, str]]:
        """``(ts, "sample" | event type)`` of each pending entry, oldest first."""
        for entry in self._entries:
            yield entry[0], entry[1] if len(entry) == 3 else "sample"

    def add_sample(self, ts_ms: int, signals: Mapping[str, Any]) -> None:
        """Keep one telemetry sample measured at ``ts_ms`` (vehicle clock)."""
        entries = self._entries
        if len(entries) >= self.capacity:
            entries.popleft()
            self.dropped += 1
        entries.append((ts_ms, signals))

    def add_event(self, ts_ms: int, event_type: str, data: Mapping[str, Any]) -> None:
        """Keep one event, e.g. a DTC raised in the tunnel."""
        entries = self._entries
        if len(entries) >= self.capacity:
            entries.popleft()
            self.dropped += 1
        entries.append((ts_ms, event_type, data))

    def take_sample(self) -> tuple[int, Mapping[str, Any]] | None:
        """The buffered sample (ts, signals), removed, when it is all the buffer holds (what
        a car online has each second); else None and the buffer is left as it is."""
        entries = self._entries
        if len(entries) == 1 and len(entries[0]) == 2:
            return entries.pop()  # type: ignore[return-value]  # a sample: two items
        return None

    def flush(
        self,
        counter: SeqCounter,
        max_samples_per_message: int = 60,
        *,
        max_bytes: int = MAX_BODY_BYTES,
    ) -> list[Outbound]:
        """Empty the buffer into v1 messages, oldest first, numbered by ``counter``.

        Consecutive samples share a telemetry message (``samples`` array) of at most
        ``max_samples_per_message`` samples and about ``max_bytes`` of JSON; an event ends
        the batch before it, so the order of everything is kept.
        """
        if max_samples_per_message < 1:
            raise ValueError("max_samples_per_message must be at least 1")
        entries = self._entries
        out: list[Outbound] = []
        batch: list[dict[str, Any]] = []
        size = _ENVELOPE_BYTES
        while entries:
            entry = entries.popleft()
            if len(entry) == 3:  # an event
                self._close(counter, batch, out)
                batch, size = [], _ENVELOPE_BYTES
                body = event_body(counter, entry[0], entry[1], entry[2])
                out.append(Outbound(Topic.EVENTS, body))
                continue
            signals = entry[1]  # a dict is not copied (see the class docstring)
            plain = signals if type(signals) is dict else dict(signals)
            sample = {"ts": entry[0], "signals": plain}
            if not batch and not entries:
                batch.append(sample)  # alone, nothing to split: no need to measure it
                break
            sample_size = len(_encode(sample)) + 1
            if batch and (len(batch) >= max_samples_per_message or size + sample_size > max_bytes):
                self._close(counter, batch, out)
                batch, size = [], _ENVELOPE_BYTES
            batch.append(sample)
            size += sample_size
        self._close(counter, batch, out)
        return out

    @staticmethod
    def _close(counter: SeqCounter, batch: list[dict[str, Any]], out: list[Outbound]) -> None:
        if batch:
            out.append(Outbound(Topic.TELEMETRY, _telemetry(counter, batch)))


def single_sample_body(
    counter: SeqCounter, ts_ms: int, signals: Mapping[str, Any]
) -> dict[str, Any]:
    """The body :meth:`StoreAndForward.flush` makes of a buffer holding one sample."""
    plain = signals if type(signals) is dict else dict(signals)
    return _telemetry(counter, [{"ts": ts_ms, "signals": plain}])


def _telemetry_numbered(
    sid: str, seq: int, ts_ms: int, signals: Mapping[str, Any]
) -> dict[str, Any]:
    """The body of :func:`single_sample_body` whose number ``seq`` was taken already."""
    plain = signals if type(signals) is dict else dict(signals)
    return {
        "v": PROTOCOL_VERSION,
        "sid": sid,
        "seq": seq,
        "samples": [{"ts": ts_ms, "signals": plain}],
    }


def numbered_sample_body(
    counter: SeqCounter, seq: int, ts_ms: int, signals: Mapping[str, Any]
) -> dict[str, Any]:
    """The body of :meth:`SeqCounter.sample_payload` that took number ``seq`` (the rare
    message that is held back or corrupted needs it as a dict)."""
    return _telemetry_numbered(counter.sid, seq, ts_ms, signals)


def _telemetry(counter: SeqCounter, batch: list[dict[str, Any]]) -> dict[str, Any]:
    """A v1 telemetry body carrying `batch` as its ``samples``, numbered by ``counter``."""
    return {"v": PROTOCOL_VERSION, "sid": counter.sid, "seq": counter.take(), "samples": batch}
