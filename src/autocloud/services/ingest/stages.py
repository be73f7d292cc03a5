"""The ingest stages, in order: each takes a batch, works on its live items, and either
passes an item on or refuses it into the batch's dead letters with a reason.

Stages never raise for bad input; only a store failure escapes (and then nothing is
acknowledged, so the broker redelivers). They are plain callables, listed in `STAGES`.
"""

import queue
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

import msgspec

from autocloud.domain.catalog import Catalog
from autocloud.domain.protocol import (
    CommandResult,
    DiagResponse,
    Event,
    KeyListResult,
    Message,
    ProtocolError,
    Reason,
    SequencedMessage,
    State,
    Telemetry,
    Topic,
    decode,
    samples_of,
    split_topic,
)
from autocloud.domain.records import (
    DeadLetter,
    EventRecord,
    Frame,
    PresenceChange,
    Reply,
    Value,
    VehicleRef,
    WriteBatch,
)
from autocloud.domain.replay import SeqWindow, Verdict
from autocloud.ports.link import Inbound
from autocloud.ports.stores import TelemetryWriter

OVERSIZE_KEPT_BYTES = 4096
EARLIEST_TS = 946_684_800_000  # 2000-01-01: older timestamps are a broken vehicle clock


@dataclass(slots=True)
class Item:
    """One inbound message on its way through the stages."""

    inbound: Inbound
    vin: str | None = None
    kind: Topic | None = None
    message: Message | None = None
    vehicle: VehicleRef | None = None
    points: list[tuple[str, int, Value]] = field(default_factory=list)  # (path, ts, value)
    alive: bool = True


@dataclass(slots=True)
class Batch:
    """The messages of one transaction and what they will write."""

    items: list[Item]
    now_ms: int
    out: WriteBatch
    paths: set[str] = field(default_factory=set)  # every signal the recorded points carry

    def live(self) -> list[Item]:
        return [i for i in self.items if i.alive]

    def refuse(self, item: Item, reason: Reason | str, detail: str) -> None:
        """Dead-letter the whole message."""
        item.alive = False
        self.dead_letter(item, reason, detail)

    def dead_letter(self, item: Item, reason: Reason | str, detail: str) -> None:
        """Dead-letter (part of) a message; the raw payload is kept whole."""
        self.out.dead_letters.append(
            DeadLetter(
                received_ms=item.inbound.received_ms,
                topic=item.inbound.topic,
                reason=str(reason),
                detail=detail,
                payload=item.inbound.payload,
                vin=item.vin,
                brand=item.vehicle.brand if item.vehicle else None,
            )
        )


class Stage(Protocol):
    def __call__(self, batch: Batch) -> None: ...


@dataclass(slots=True)
class Envelope:
    """Topic shape and payload size."""

    max_payload_bytes: int

    def __call__(self, batch: Batch) -> None:
        for item in batch.live():
            try:
                item.vin, item.kind = split_topic(item.inbound.topic)
            except ProtocolError as exc:
                batch.refuse(item, exc.reason, exc.detail)
                continue
            size = len(item.inbound.payload)
            if size > self.max_payload_bytes:
                # Keep a prefix to show, not the whole: a dead letter must not become a way
                # to fill the database.
                item.inbound.payload = item.inbound.payload[:OVERSIZE_KEPT_BYTES]
                batch.refuse(
                    item,
                    Reason.OVERSIZE,
                    f"payload is {size} bytes, limit {self.max_payload_bytes}; "
                    f"the first {OVERSIZE_KEPT_BYTES} bytes are kept",
                )


def decode_stage(batch: Batch) -> None:
    """Bytes to typed v1 messages (msgspec)."""
    for item in batch.live():
        assert item.kind is not None
        try:
            item.message = decode(item.kind, item.inbound.payload, item.inbound.content_type)
        except ProtocolError as exc:
            batch.refuse(item, exc.reason, exc.detail)


@dataclass(slots=True)
class Authorise:
    """The topic's VIN must be a registered vehicle, and a VIN in the body must match it.

    The broker already confines each vehicle to its own topics; this is the second check.
    Registered vehicles are cached by VIN. A removed vehicle leaves the cache at once when the
    removal happens in this process (`forget_vehicle`, from any thread), and within
    `max_age_s` when another process removed it, so a VIN registered again is not attributed
    to the vehicle it used to be.
    """

    store: TelemetryWriter
    cache: dict[str, VehicleRef] = field(default_factory=dict)
    cache_limit: int = 2_000_000
    max_age_s: float = 60.0
    _filled_at: float = 0.0
    _removed: "queue.SimpleQueue[int]" = field(default_factory=queue.SimpleQueue)

    def __call__(self, batch: Batch) -> None:
        self._expire()
        live = batch.live()
        missing = {i.vin for i in live if i.vin not in self.cache and i.vin is not None}
        if missing:
            if len(self.cache) + len(missing) > self.cache_limit:
                self.cache.clear()
            self.cache.update(self.store.refs(missing))
        for item in live:
            assert item.vin is not None and item.message is not None
            ref = self.cache.get(item.vin)
            if ref is None:
                batch.refuse(item, Reason.UNKNOWN_VEHICLE, f"no vehicle {item.vin!r} is registered")
                continue
            item.vehicle = ref
            claimed = item.message.vin
            if claimed is not None and claimed != item.vin:
                batch.refuse(
                    item, Reason.VIN_MISMATCH, f"body names VIN {claimed!r} on {item.vin!r}'s topic"
                )

    def _expire(self) -> None:
        now = time.monotonic()
        if now - self._filled_at > self.max_age_s:
            self.cache.clear()
            self._filled_at = now
            return
        removed: set[int] = set()
        while not self._removed.empty():
            removed.add(self._removed.get_nowait())
        if removed:
            for vin in [v for v, ref in self.cache.items() if ref.id in removed]:
                del self.cache[vin]

    def forget(self, vin: str) -> None:
        self.cache.pop(vin, None)

    def forget_vehicle(self, vehicle_id: int) -> None:
        """A vehicle was removed (any thread): drop it before the next batch."""
        self._removed.put(vehicle_id)

    def clear(self) -> None:
        """Forget every vehicle (ingest thread), e.g. before retrying a failed batch."""
        self.cache.clear()

    def attribute(self, batch: Batch) -> None:
        """Give dead letters refused before this stage their vehicle's brand.

        The broker lets only a vehicle (or the platform) publish under its VIN, so a malformed
        message on a registered vehicle's topic belongs to that vehicle's tenant.
        """
        orphans = [d for d in batch.out.dead_letters if d.brand is None and d.vin]
        missing = {d.vin for d in orphans if d.vin not in self.cache}
        if missing:
            self.cache.update(self.store.refs(v for v in missing if v is not None))
        for dead in orphans:
            ref = self.cache.get(dead.vin) if dead.vin else None
            if ref is not None:
                dead.brand = ref.brand


@dataclass(slots=True)
class Validate:
    """Timestamps and every signal value against the catalog; good values survive bad ones."""

    catalog: Catalog
    max_future_skew_ms: int

    def __call__(self, batch: Batch) -> None:
        latest = batch.now_ms + self.max_future_skew_ms
        for item in batch.live():
            message = item.message
            if isinstance(message, Telemetry):
                self._telemetry(batch, item, message, latest)
            elif isinstance(message, Event | CommandResult | DiagResponse | KeyListResult):
                self._check_ts(batch, item, message.ts, latest)

    def _check_ts(self, batch: Batch, item: Item, ts: int, latest: int) -> bool:
        if ts > latest:
            batch.refuse(
                item,
                Reason.FUTURE_TIMESTAMP,
                f"ts {ts} is {(ts - batch.now_ms) / 1000:.0f} s ahead of the platform clock",
            )
            return False
        if ts < EARLIEST_TS:
            batch.refuse(item, Reason.INVALID_TIMESTAMP, f"ts {ts} is before 2000-01-01")
            return False
        return True

    def _telemetry(self, batch: Batch, item: Item, message: Telemetry, latest: int) -> None:
        check = self.catalog.check
        floats, ints = self.catalog.number_bounds
        problems: list[str] = []
        reasons: dict[str, list[str]] = {}
        append = item.points.append
        for sample in samples_of(message):
            ts = sample.ts
            if not self._check_ts(batch, item, ts, latest):
                item.points.clear()
                return
            for path, raw in sample.signals.items():
                # The common cases inline (a number within its signal's limits, as `check`
                # accepts it unchanged); everything else gets the catalog's full check.
                kind = type(raw)
                if kind is float:
                    bounds = floats.get(path)
                    if bounds is not None and bounds[0] <= raw <= bounds[1]:
                        append((path, ts, raw))
                        continue
                elif kind is int:
                    bounds = ints.get(path)
                    if bounds is not None and bounds[0] <= raw <= bounds[1]:
                        append((path, ts, raw))
                        continue
                result = check(path, raw)
                if result.rejection is None:
                    append((path, ts, result.value))
                else:
                    reasons.setdefault(str(result.rejection), []).append(result.detail)
        for reason, details in reasons.items():
            batch.dead_letter(item, reason, "; ".join(details))
            problems.extend(details)
        if not item.points and problems:
            item.alive = False  # every value refused: already dead-lettered above


@dataclass(slots=True)
class Dedupe:
    """Refuse a message whose (vin, sid, seq) was seen before (redelivery or replay)."""

    store: TelemetryWriter
    cache: dict[tuple[int, str], SeqWindow] = field(default_factory=dict)
    cache_limit: int = 2_000_000

    def __call__(self, batch: Batch) -> None:
        live = [i for i in batch.live() if not isinstance(i.message, State)]
        cache = self.cache
        # Not `keys - cache.keys()`: a set minus a dict view walks the whole cache (2.4 ms a
        # batch at 100,000 cached windows), this only the batch's keys.
        missing = {key for key in map(self._key, live) if key not in cache}
        if missing:
            if len(cache) + len(missing) > self.cache_limit:
                cache.clear()
            cache.update(self.store.windows(missing))
        for item in live:
            key = self._key(item)
            window = batch.out.windows.get(key)
            if window is None:
                window = self.cache.get(key, SeqWindow()).copy()
            assert isinstance(item.message, SequencedMessage)
            verdict = window.offer(item.message.seq)
            if verdict is Verdict.NEW:
                batch.out.windows[key] = window
            elif verdict is Verdict.DUPLICATE:
                batch.refuse(
                    item, Reason.DUPLICATE, f"seq {item.message.seq} of sid {key[1]!r} seen before"
                )
            else:
                batch.refuse(
                    item,
                    Reason.STALE_SEQ,
                    f"seq {item.message.seq} is more than the replay window "
                    f"behind seq {window.top}",
                )

    @staticmethod
    def _key(item: Item) -> tuple[int, str]:
        assert item.vehicle is not None and isinstance(item.message, SequencedMessage)
        return item.vehicle.id, item.message.sid

    def committed(self, out: WriteBatch) -> None:
        """Adopt the windows of a committed batch (only then, so a failed commit can retry)."""
        self.cache.update(out.windows)


@dataclass(slots=True)
class Record:
    """Samples to history and twin as frames (one per vehicle and instant), events, presence.

    The same frames go to both: history keeps every one, the twin the newest value of each
    signal (the store resolves that per vehicle, whatever the order of arrival).
    """

    store: TelemetryWriter

    def __call__(self, batch: Batch) -> None:
        live = batch.live()
        paths = batch.paths
        for i in live:
            paths.update([p for p, _, _ in i.points])
        ids = self.store.signal_ids(paths) if paths else {}
        frames = batch.out.history
        for item in live:
            assert item.vehicle is not None
            points = item.points
            if points:
                vid = item.vehicle.id
                if _one_sample(item.message):  # the usual case: one instant, one frame
                    frames.append(Frame(vid, points[0][1], {ids[p]: v for p, _, v in points}))
                else:
                    by_ts: dict[int, dict[int, Value]] = {}
                    for path, ts, value in points:
                        values = by_ts.get(ts)
                        if values is None:
                            values = by_ts[ts] = {}
                        values[ids[path]] = value
                    frames += [Frame(vid, ts, values) for ts, values in by_ts.items()]
            _ROUTES.get(type(item.message), _nothing)(batch, item)
        batch.out.twin += frames


def _one_sample(message: Message | None) -> bool:
    return isinstance(message, Telemetry) and message.samples is None


def _event(batch: Batch, item: Item) -> None:
    message = item.message
    assert isinstance(message, Event) and item.vehicle is not None
    batch.out.events.append(
        EventRecord(
            item.vehicle.id, message.ts, message.type, message.data, item.inbound.received_ms
        )
    )


def _state(batch: Batch, item: Item) -> None:
    message = item.message
    assert isinstance(message, State) and item.vehicle is not None
    # Ordered by the platform's receive time: a will has no time of its own, and mixing in
    # the vehicle's clock would let a skewed clock freeze the state.
    batch.out.presence.append(
        PresenceChange(
            item.vehicle.id,
            message.online,
            item.inbound.received_ms,
            message.sid,
            replay=item.inbound.retain,
        )
    )


def _reply(batch: Batch, item: Item) -> None:
    """A vehicle's reply to the platform; the store writes it with the writer of its type."""
    assert item.vehicle is not None and item.vin is not None
    batch.out.replies.append(
        Reply(item.vehicle.id, item.vin, item.vehicle.brand, item.inbound.received_ms, item.message)
    )


def _nothing(batch: Batch, item: Item) -> None:
    return None


_ROUTES: dict[type, Callable[[Batch, Item], None]] = {
    Event: _event,
    State: _state,
    CommandResult: _reply,
    DiagResponse: _reply,
    KeyListResult: _reply,
}

__all__ = [
    "Authorise",
    "Batch",
    "Dedupe",
    "Envelope",
    "Item",
    "Record",
    "Stage",
    "Validate",
    "decode_stage",
    "msgspec",
]
