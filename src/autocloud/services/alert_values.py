"""The signal values the alert stage remembers per vehicle, with a per-batch undo.

Two kinds of value outlive the message that carried them:

* ``guards``: the last value of each `while` guard (a guarded rule holds only while its
  guard does), always;
* ``watched``: the last value of a signal that a guarded rule watches — but only while it may
  meet one of the path's rules (outside the path's quiet band): it is there to be re-checked
  when the guard turns, and a value that meets no rule would open nothing then. A quiet value
  removes the one before it. So nearly every vehicle has no watched value, and the stage
  takes its fastest path for it.

They are written in place as a batch is evaluated; what a vehicle had before the batch's
first write is saved, one copy per vehicle and batch rather than one entry per sample, so
that a batch whose commit fails can be undone and its retry evaluated from the same values.
"""

from collections.abc import Iterable, Iterator, Mapping
from typing import Any

Point = tuple[str, int, Any]  # (path, ts, value) as ingest has it


class _ByVehicle:
    """Points by vehicle and path, with the copies that undo the current batch."""

    def __init__(self) -> None:
        self.by_vehicle: dict[int, dict[str, Point]] = {}
        self._undo: dict[int, dict[str, Point] | None] = {}  # None: the vehicle had none

    def to_write(self, vid: int) -> dict[str, Point]:
        """The vehicle's values to change, saved for undo before the batch's first write."""
        values = self.by_vehicle.get(vid)
        if vid not in self._undo:
            self._undo[vid] = None if values is None else dict(values)
        if values is None:
            values = self.by_vehicle[vid] = {}
        return values

    def discard(self, vid: int, path: str) -> None:
        values = self.by_vehicle.get(vid)
        if values is not None and path in values:
            del self.to_write(vid)[path]
            if not values:
                del self.by_vehicle[vid]

    def undo(self) -> None:
        for vid, old in self._undo.items():
            if old is None:
                self.by_vehicle.pop(vid, None)
            else:
                self.by_vehicle[vid] = old
        self._undo = {}

    def adopt(self) -> None:
        self._undo = {}

    def clear(self) -> None:
        self.by_vehicle.clear()


class KeptValues:
    """Guard and watched values by vehicle and path; seeded from the twin on first sight."""

    def __init__(self, seed_limit: int) -> None:
        self._guards = _ByVehicle()
        self._watched = _ByVehicle()
        self.watched = self._watched.by_vehicle  # read-only use: which vehicles have any
        self._seeded: set[int] = set()
        self._seed_limit = seed_limit  # vehicles whose values are kept

    def guard(self, vid: int, path: str) -> Point | None:
        values = self._guards.by_vehicle.get(vid)
        return None if values is None else values.get(path)

    def set_guard(self, vid: int, point: Point) -> None:
        self._guards.to_write(vid)[point[0]] = point

    def keep(self, vid: int, point: Point) -> None:
        """Remember a watched value that may meet a rule."""
        self._watched.to_write(vid)[point[0]] = point

    def drop(self, vid: int, path: str) -> None:
        """A watched value that meets no rule came: forget the one before it."""
        self._watched.discard(vid, path)

    def points(self, vid: int) -> Iterator[Point]:
        """Every value kept for the vehicle (watched, then guards), a snapshot."""
        watched = self._watched.by_vehicle.get(vid)
        guards = self._guards.by_vehicle.get(vid)
        yield from list(watched.values()) if watched else ()
        yield from list(guards.values()) if guards else ()

    def undo(self) -> None:
        """Back to the values before the batch (its commit failed)."""
        self._guards.undo()
        self._watched.undo()

    def adopt(self) -> None:
        """Keep the batch's values (it committed)."""
        self._guards.adopt()
        self._watched.adopt()

    def unseeded(self, vehicle_ids: Iterable[int]) -> set[int]:
        """Those of `vehicle_ids` not seeded yet."""
        return set(vehicle_ids).difference(self._seeded)

    def seed(
        self,
        vehicle_ids: Iterable[int],
        guards: Mapping[int, Mapping[str, tuple[int, Any]]],
        watched: Mapping[int, Mapping[str, tuple[int, Any]]],
    ) -> None:
        """Add the twin's (ts, value) of vehicles first seen; a value seen since stays.

        Called before the batch writes anything. Past the limit everything is forgotten
        (and seeded again as vehicles come back), so memory stays bounded."""
        wanted = set(vehicle_ids)
        if len(self._seeded) + len(wanted) > self._seed_limit:
            self._seeded.clear()
            self._guards.clear()
            self._watched.clear()
        for store, found in ((self._guards, guards), (self._watched, watched)):
            for vid, points in found.items():
                if points:
                    values = store.by_vehicle.setdefault(vid, {})
                    for path, (ts, value) in points.items():
                        values.setdefault(path, (path, ts, value))
        self._seeded.update(wanted)


__all__ = ["KeptValues", "Point"]
