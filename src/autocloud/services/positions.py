"""Live positions for the fleet map: every vehicle's moves of the last second in one event.

The live stream (`/v1/stream`) sends one `twin` change per vehicle message, with every
signal of it: at 10,000 vehicles reporting each second that is 10,000 events and ~3.7 MB a
second per browser. The map needs far less: where each car is, where it heads, how fast, its
energy level, and whether it is online and charging.

`PositionFeed` listens to the hub (on the publisher's thread: it only folds) and keeps each
vehicle's latest map fields (`domain/positions.py`), with a sequence number per change.
A stream subscriber holds a `PositionCursor`: once per interval it takes the vehicles that
changed since its last take, keeps those its own filter accepts (the stream's tenant and
owner filter, `routes_stream.change_filter`, applied to each vehicle's latest change), and
sends them as one `positions` event of columns. Rows carry the vehicle's latest known values
(not deltas), so a missed or merged interval loses nothing.

`PositionsService.snapshot` is the map's first load: all of a caller's vehicles in one read.
"""

import threading
import time
from collections.abc import Callable, Collection
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
from autocloud.ports.positions import PositionReader
from autocloud.services.fanout import Change, Hub, Listener

FOLDED = frozenset({"twin", "presence"})  # the kinds a position row is made of
_INDEX = {name: i for i, name in enumerate(LIVE_FIELDS)}
_ONLINE = _INDEX[ONLINE]
_EMPTY: tuple[Compact, ...] = (None,) * len(LIVE_FIELDS)
# (VSS path, column, rounding) of each signal: fold runs on the ingest thread for every
# twin change (10,000 a second at 10,000 vehicles), so it looks up these few paths only.
_SLOTS = tuple((path, _INDEX[name], rounding) for name, (path, rounding) in SIGNALS.items())
_NUMBER = (bool, int, float)


@dataclass(frozen=True, slots=True)
class LiveRow:
    """A vehicle's latest map fields; `change` is its latest twin/presence change (what a
    subscriber's filter is applied to), `seq` the feed's sequence number of that change."""

    seq: int
    change: Change
    values: tuple[Compact, ...]  # in LIVE_FIELDS order


def fold(previous: tuple[Compact, ...] | None, change: Change) -> tuple[Compact, ...]:
    """A vehicle's map fields after `change` (twin: its signals, and it is online, since it
    sends; presence: online or not). Fields the change does not name keep their value."""
    values: list[Compact] = list(previous or _EMPTY)
    if change.kind == "twin":
        signals = change.data.get("signals") or {}
        for path, index, rounding in _SLOTS:
            sample = signals.get(path)
            if sample is not None:
                value = sample.get("value")
                values[index] = rounding(float(value)) if isinstance(value, _NUMBER) else None
        values[_ONLINE] = 1
    elif change.kind == "presence":
        values[_ONLINE] = 1 if change.data.get("online") else 0
    return tuple(values)


class PositionFeed:
    """Each vehicle's latest map fields, in the order they last changed (thread-safe)."""

    def __init__(self) -> None:
        self._rows: dict[str, LiveRow] = {}  # vin -> row; dict order = order of change
        self._seq = 0
        self._lock = threading.Lock()
        self._listener: Listener | None = None

    def attach(self, hub: Hub) -> None:
        self._listener = hub.listen(lambda c: c.kind in FOLDED, self.fold)

    def detach(self, hub: Hub) -> None:
        if self._listener is not None:
            hub.unlisten(self._listener)
            self._listener = None

    def fold(self, changes: list[Change]) -> None:
        """Hub listener: fold twin and presence changes into the vehicles' rows."""
        with self._lock:
            rows = self._rows
            for change in changes:
                if change.kind not in FOLDED or not change.vin:
                    continue
                previous = rows.pop(change.vin, None)  # re-inserted last: newest at the end
                self._seq += 1
                # A VIN now in another brand is another vehicle (removed and registered
                # again, maybe by another process): it starts from nothing, never from the
                # fields of its former tenant.
                same = previous is not None and previous.change.brand == change.brand
                values = fold(previous.values if same and previous is not None else None, change)
                rows[change.vin] = LiveRow(self._seq, change, values)

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
        self._seq = feed.seq  # what happened before is in the snapshot (/v1/fleet/positions)
        self._due = clock() + interval_s

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
