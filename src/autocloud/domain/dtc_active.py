"""A vehicle's active trouble codes, kept from two reports that can disagree in time.

What: vehicles report DTCs twice, as ``dtc.raised``/``dtc.cleared`` events (with a freeze
frame) and as the ``Vehicle.Diagnostics.DTCList`` signal (the whole active list). Both are
stamped with the vehicle's clock and may arrive late or out of order (store-and-forward, a
telemetry message held back). :class:`VehicleDtcs` merges them by time:

* an event raises or clears its code unless the code's last change is newer than it;
* a list raises the codes it names and clears those it lacks, again only where the list is
  newer than the code's last change, and only if it is the newest list seen;
* a code raised by the list gets its freeze frame when its event comes.

Every application returns what changed; the service writes that as history. Pure values.
"""

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Final

__all__ = ["ActiveDtc", "DtcTransition", "DtcUpdate", "VehicleDtcs"]

FROM_EVENT: Final = "event"
FROM_LIST: Final = "list"
CLEARED_MEMORY: Final = 64  # codes whose clear time a vehicle remembers (for late reports)


@dataclass(frozen=True, slots=True)
class ActiveDtc:
    """One active code of one vehicle."""

    code: str
    since_ms: int  # vehicle time it was raised
    last_seen_ms: int  # vehicle time of the newest report that named it
    freeze_frame: Mapping[str, Any] | None = None
    source: str = FROM_EVENT  # what raised it: an event or the DTC list


@dataclass(frozen=True, slots=True)
class DtcTransition:
    """A code raised or cleared, for the history."""

    code: str
    raised: bool
    ts: int
    source: str
    freeze_frame: Mapping[str, Any] | None = None


@dataclass(slots=True)
class DtcUpdate:
    """What one ingest batch changed of one vehicle's codes (a WriteBatch extra record)."""

    vehicle_id: int
    vin: str
    brand: str
    received_ms: int
    transitions: list[DtcTransition] = field(default_factory=list)
    upserts: list[ActiveDtc] = field(default_factory=list)  # active rows to write
    removed: list[str] = field(default_factory=list)  # active rows to delete
    active: tuple[str, ...] = ()  # the active codes after the batch

    @property
    def changed(self) -> bool:
        """Whether the set of active codes changed (not just a last-seen time)."""
        return bool(self.transitions)


@dataclass(slots=True)
class VehicleDtcs:
    """The active codes of one vehicle, and what it needs to order late reports."""

    active: dict[str, ActiveDtc] = field(default_factory=dict)
    cleared_ms: dict[str, int] = field(default_factory=dict)  # code -> when last cleared
    list_ms: int = -1  # time of the newest DTC list applied

    def copy(self) -> "VehicleDtcs":
        return VehicleDtcs(dict(self.active), dict(self.cleared_ms), self.list_ms)

    def _last_change(self, code: str) -> int:
        held = self.active.get(code)
        return max(held.since_ms if held else -1, self.cleared_ms.get(code, -1))

    def raised(
        self, code: str, ts: int, freeze_frame: Mapping[str, Any] | None, update: DtcUpdate
    ) -> None:
        """A ``dtc.raised`` event."""
        held = self.active.get(code)
        if held is not None:
            if (held.freeze_frame is None and freeze_frame is not None) or ts > held.last_seen_ms:
                better = replace(
                    held,
                    freeze_frame=held.freeze_frame or freeze_frame,
                    last_seen_ms=max(ts, held.last_seen_ms),
                )
                self._put(better, update)
            return
        if ts <= self.cleared_ms.get(code, -1):
            return  # a late report of a fault cleared since
        self._put(ActiveDtc(code, ts, ts, freeze_frame, FROM_EVENT), update)
        update.transitions.append(DtcTransition(code, True, ts, FROM_EVENT, freeze_frame))

    def cleared(self, code: str, ts: int, update: DtcUpdate) -> None:
        """A ``dtc.cleared`` event."""
        held = self.active.get(code)
        if held is None or ts < held.since_ms:
            return
        self._drop(code, ts, update)
        update.transitions.append(DtcTransition(code, False, ts, FROM_EVENT))

    def listed(self, codes: Iterable[str], ts: int, update: DtcUpdate) -> None:
        """A ``Vehicle.Diagnostics.DTCList`` value: the whole active set at `ts`."""
        if ts < self.list_ms:
            return  # an older list than one applied already
        self.list_ms = ts
        named = set(codes)
        for code in sorted(named):
            held = self.active.get(code)
            if held is not None:
                if ts > held.last_seen_ms:
                    self._put(replace(held, last_seen_ms=ts), update)
            elif ts > self._last_change(code):
                self._put(ActiveDtc(code, ts, ts, None, FROM_LIST), update)
                update.transitions.append(DtcTransition(code, True, ts, FROM_LIST))
        for code in sorted(set(self.active) - named):
            if ts > self._last_change(code):
                self._drop(code, ts, update)
                update.transitions.append(DtcTransition(code, False, ts, FROM_LIST))

    def _put(self, dtc: ActiveDtc, update: DtcUpdate) -> None:
        self.active[dtc.code] = dtc
        update.upserts[:] = [u for u in update.upserts if u.code != dtc.code] + [dtc]
        if dtc.code in update.removed:
            update.removed.remove(dtc.code)

    def _drop(self, code: str, ts: int, update: DtcUpdate) -> None:
        del self.active[code]
        self.cleared_ms[code] = ts
        if len(self.cleared_ms) > CLEARED_MEMORY:
            oldest = min(self.cleared_ms, key=self.cleared_ms.__getitem__)
            del self.cleared_ms[oldest]
        update.upserts[:] = [u for u in update.upserts if u.code != code]
        update.removed.append(code)
