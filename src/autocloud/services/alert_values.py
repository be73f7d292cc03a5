"""The signal values the alert stage remembers per vehicle, with a per-batch undo.

Two kinds of value outlive the message that carried them: the last value of each `while`
guard (a guarded rule holds only while its guard does) and the last value of each signal a
guarded rule watches (re-checked when the guard turns). They are written in place as a batch
is evaluated; what a vehicle had before the batch's first write is saved, one copy per
vehicle and batch rather than one entry per sample, so that a batch whose commit fails can
be undone and its retry evaluated from the same values.
"""

from collections.abc import Iterable, Mapping
from typing import Any

Point = tuple[str, int, Any]  # (path, ts, value) as ingest has it


class KeptValues:
    """Guard and watched values by vehicle and path; seeded from the twin on first sight."""

    def __init__(self, seed_limit: int) -> None:
        self._by_vehicle: dict[int, dict[str, Point]] = {}
        self._undo: dict[int, dict[str, Point] | None] = {}  # None: the vehicle had none
        self._seeded: set[int] = set()
        self._seed_limit = seed_limit  # vehicles whose values are kept

    def get(self, vid: int, path: str) -> Point | None:
        values = self._by_vehicle.get(vid)
        return None if values is None else values.get(path)

    def to_write(self, vid: int) -> dict[str, Point]:
        """The vehicle's values to change, saved for undo before the batch's first write."""
        values = self._by_vehicle.get(vid)
        if vid not in self._undo:
            self._undo[vid] = None if values is None else dict(values)
        if values is None:
            values = self._by_vehicle[vid] = {}
        return values

    def undo(self) -> None:
        """Back to the values before the batch (its commit failed)."""
        for vid, old in self._undo.items():
            if old is None:
                self._by_vehicle.pop(vid, None)
            else:
                self._by_vehicle[vid] = old
        self._undo = {}

    def adopt(self) -> None:
        """Keep the batch's values (it committed)."""
        self._undo = {}

    def seeded(self, vid: int) -> bool:
        return vid in self._seeded

    def seed(
        self, vehicle_ids: Iterable[int], found: Mapping[int, Mapping[str, tuple[int, Any]]]
    ) -> None:
        """Add the twin's (ts, value) of vehicles first seen; a value seen since stays.

        Called before the batch writes anything. Past the limit everything is forgotten
        (and seeded again as vehicles come back), so memory stays bounded."""
        wanted = set(vehicle_ids)
        if len(self._seeded) + len(wanted) > self._seed_limit:
            self._seeded.clear()
            self._by_vehicle.clear()
        for vid, points in found.items():
            values = self._by_vehicle.setdefault(vid, {})
            for path, (ts, value) in points.items():
                values.setdefault(path, (path, ts, value))
        self._seeded.update(wanted)


__all__ = ["KeptValues", "Point"]
