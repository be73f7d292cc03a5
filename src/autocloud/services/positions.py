"""Live positions for the fleet map: every vehicle's moves of the last second in one event.

The live stream (`/v1/stream`) sends one `twin` change per vehicle message, with every
signal of it: at 10,000 vehicles reporting each second that is 10,000 events and ~3.7 MB a
second per browser. The map needs far less: where each car is, where it heads, how fast, its
energy level, and whether it is online and charging.

`PositionFeed` follows ingest's committed batches (`on_commit`, on the ingest thread: it only
folds the few map signals of each message) and keeps each vehicle's latest map fields
(`domain/positions.py`), with a sequence number per change, only while a map follows it
(`follow`). It reads the batch, not the hub's twin changes, so ingest builds those only while
a stream subscriber wants them.
A stream subscriber holds a `PositionCursor`: once per interval it takes the vehicles that
changed since its last take, keeps those its own filter accepts (the stream's tenant and
owner filter, `routes_stream.change_filter`, applied to each vehicle's latest change), and
sends them as one `positions` event of columns. Rows carry the vehicle's latest known values
(not deltas), so a missed or merged interval loses nothing.

`PositionsService.snapshot` is the map's first load: all of a caller's vehicles in one read.
"""

import threading
import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass

import msgspec

from autocloud.domain.access import Principal
from autocloud.domain.positions import (
    LIVE_FIELDS,
    ONLINE,
    SIGNALS,
    Compact,
    Position,
    columns,
    snapshot_columns,
)
from autocloud.domain.protocol import State, Telemetry
from autocloud.ports.positions import PositionReader
from autocloud.services.fanout import Change
from autocloud.services.ingest.stages import Batch

_INDEX = {name: i for i, name in enumerate(LIVE_FIELDS)}
_ONLINE = _INDEX[ONLINE]
_EMPTY: tuple[Compact, ...] = (None,) * len(LIVE_FIELDS)
# VSS path -> (column, rounding) of each map signal: folding runs on the ingest thread for
# every telemetry message (10,000 a second at 10,000 vehicles) and looks up these paths only.
_SLOT_OF = {path: (_INDEX[name], rounding) for name, (path, rounding) in SIGNALS.items()}
_NUMBER = (bool, int, float)
_NO_DATA: dict[str, object] = {}


@dataclass(frozen=True, slots=True)
class LiveRow:
    """A vehicle's latest map fields; `change` is its latest twin/presence change (what a
    subscriber's filter is applied to), `seq` the feed's sequence number of that change."""

    seq: int
    change: Change
    values: tuple[Compact, ...]  # in LIVE_FIELDS order


def fold_points(
    previous: tuple[Compact, ...] | None, points: Sequence[tuple[str, int, object]]
) -> tuple[Compact, ...]:
    """A vehicle's map fields after a telemetry message's points (path, ts, value): each map
    signal takes its newest value (of equal ts the later point), and the vehicle is online.
    Only the few map signals are looked at, so this costs little per message."""
    values: list[Compact] = list(previous or _EMPTY)
    found = [(ts, slot, v) for path, ts, v in points if (slot := _SLOT_OF.get(path)) is not None]
    if len(found) > 1 and found[0][0] != found[-1][0]:
        found.sort(key=_first)  # several instants: oldest first, so the newest is applied last
    for _, (index, rounding), value in found:
        values[index] = rounding(float(value)) if isinstance(value, _NUMBER) else None
    values[_ONLINE] = 1
    return tuple(values)


def _first(entry: tuple[int, object, object]) -> int:
    return entry[0]


class PositionFeed:
    """Each vehicle's latest map fields, in the order they last changed (thread-safe)."""

    def __init__(self) -> None:
        self._rows: dict[str, LiveRow] = {}  # vin -> row; dict order = order of change
        self._seq = 0
        self._lock = threading.Lock()
        self._followers = 0

    def follow(self) -> None:
        """A map starts following (a `PositionCursor`). The feed folds only while one does:
        folding is ~10 % of ingest's interpreter time, and rows folded while nobody followed
        are dropped when the first follower comes, since they missed what came meanwhile. A
        new follower's map starts from the snapshot; a field its rows do not know yet is None
        ("no news"), which the map reads as "keep the snapshot's value"."""
        with self._lock:
            if self._followers == 0:
                self._rows.clear()
            self._followers += 1

    def unfollow(self) -> None:
        with self._lock:
            self._followers = max(0, self._followers - 1)

    def on_commit(self, batch: Batch) -> None:
        """Ingest's after-commit listener: the batch's telemetry and presence, in order."""
        if not self._followers:
            return
        with self._lock:
            for item in batch.items:
                message, vehicle, vin = item.message, item.vehicle, item.vin
                if not item.alive or vehicle is None or not vin:
                    continue
                if type(message) is Telemetry and item.points:
                    self._fold_twin(vin, vehicle.brand, item.points)
                elif type(message) is State:
                    self._fold_presence(vin, vehicle.brand, message.online)

    def fold(self, changes: list[Change]) -> None:
        """Fold twin and presence changes (as the live stream carries them) into the rows: for
        a caller that holds changes rather than a batch (the tests; ingest calls `on_commit`)."""
        if not self._followers:
            return
        with self._lock:
            for change in changes:
                if not change.vin:
                    continue
                if change.kind == "twin":
                    signals = change.data.get("signals") or {}
                    points = [(p, s.get("ts", 0), s.get("value")) for p, s in signals.items()]
                    self._fold_twin(change.vin, change.brand, points)
                elif change.kind == "presence":
                    self._fold_presence(change.vin, change.brand, bool(change.data.get("online")))

    def _fold_twin(self, vin: str, brand: str, points: Sequence[tuple[str, int, object]]) -> None:
        previous = self._previous(vin, brand)
        values = fold_points(previous.values if previous else None, points)
        self._put(vin, brand, "twin", previous, values)

    def _fold_presence(self, vin: str, brand: str, online: bool) -> None:
        previous = self._previous(vin, brand)
        fields = list(previous.values if previous else _EMPTY)
        fields[_ONLINE] = 1 if online else 0
        self._put(vin, brand, "presence", previous, tuple(fields))

    def _previous(self, vin: str, brand: str) -> LiveRow | None:
        """The vehicle's row, taken out (re-inserted last: newest at the end). A VIN now in
        another brand is another vehicle (removed and registered again, maybe by another
        process): it starts from nothing, never from the fields of its former tenant."""
        previous = self._rows.pop(vin, None)
        return previous if previous is not None and previous.change.brand == brand else None

    def _put(
        self,
        vin: str,
        brand: str,
        kind: str,
        previous: LiveRow | None,
        values: tuple[Compact, ...],
    ) -> None:
        # The row's change is what a subscriber's filter reads (vin and brand): reused.
        change = previous.change if previous is not None else Change(kind, vin, brand, _NO_DATA)
        self._rows[vin] = LiveRow(self._next_seq(), change, values)

    def _next_seq(self) -> int:
        self._seq += 1
        return self._seq

    def forget(self, vin: str) -> None:
        """Drop a removed vehicle's row (any thread): a VIN registered again starts afresh,
        and removed vehicles do not accumulate."""
        with self._lock:
            self._rows.pop(vin, None)

    @property
    def seq(self) -> int:
        """The sequence number of the latest change folded (0: none yet)."""
        return self._seq

    def since(self, seq: int) -> tuple[int, list[LiveRow]]:
        """The rows that changed after `seq` (oldest first), and the feed's current seq."""
        out: list[LiveRow] = []
        with self._lock:
            for row in reversed(self._rows.values()):
                if row.seq <= seq:
                    break
                out.append(row)
            now = self._seq
        out.reverse()
        return now, out


class PositionCursor:
    """One subscriber's view of the feed: `take()` once per `interval_s` (monotonic clock)."""

    def __init__(
        self,
        feed: PositionFeed,
        accepts: Callable[[Change], bool],
        interval_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._feed = feed
        self._accepts = accepts
        self.interval_s = interval_s
        self._clock = clock
        feed.follow()
        self._following = True
        self._seq = feed.seq  # what happened before is in the snapshot (/v1/fleet/positions)
        self._due = clock() + interval_s

    def close(self) -> None:
        """The subscriber left: the feed stops folding once no cursor follows it."""
        if self._following:
            self._following = False
            self._feed.unfollow()

    def wait_s(self) -> float:
        """Seconds until the next take is due (0 when it is)."""
        return max(0.0, self._due - self._clock())

    def take(self, now_ms: int) -> str | None:
        """The `positions` event's JSON when one is due and something the subscriber may see
        changed; None otherwise. Advances the schedule."""
        if self.wait_s() > 0:
            return None
        self._due = max(self._due + self.interval_s, self._clock())
        self._seq, rows = self._feed.since(self._seq)
        visible = [(r.change.vin, *r.values) for r in rows if self._accepts(r.change)]
        if not visible:
            return None
        body = {"t": now_ms, "n": len(visible), **columns(visible, ("vin", *LIVE_FIELDS))}
        return msgspec.json.encode(body).decode()


@dataclass(frozen=True, slots=True)
class Snapshot:
    t: int  # server time of the read (ms)
    positions: list[Position]

    def body(self) -> bytes:
        """JSON: {"t", "n", "vin": [...], "brand": [...], "model": [...], "lat": [...], ...}."""
        cols = snapshot_columns(self.positions)
        return msgspec.json.encode({"t": self.t, "n": len(self.positions), **cols})


class PositionsService:
    """The map's first load (`snapshot`) and the live feed behind the stream's positions."""

    def __init__(self, reader: PositionReader, feed: PositionFeed, now_ms: Callable[[], int]):
        self._reader = reader
        self.feed = feed
        self._now_ms = now_ms

    def snapshot(self, who: Principal, brand: str | None) -> Snapshot:
        """Every vehicle the caller may see (its brand, or the chosen one for a group token;
        an owner's vehicles only), with its last position and state."""
        scope = who.scope(brand)
        vins: Collection[str] | None = who.vin_filter
        return Snapshot(self._now_ms(), self._reader.positions(scope, vins))

    def cursor(self, accepts: Callable[[Change], bool], interval_s: float) -> PositionCursor:
        return PositionCursor(self.feed, accepts, interval_s)
