"""An in-memory TelemetryWriter for testing the ingest core without a database."""

from collections.abc import Iterable

from autocloud.domain.errors import DurabilityLost, StoreUnavailable
from autocloud.domain.records import VehicleRef, WriteBatch
from autocloud.domain.replay import SeqWindow


class MemoryTelemetry:
    def __init__(self, vehicles: dict[str, VehicleRef], *, defers_sync: bool = False) -> None:
        """`defers_sync`: commits asked not to be durable wait in `unsynced` for `sync()`."""
        self.vehicles = vehicles
        self.defers_sync = defers_sync
        self.unsynced: list[WriteBatch] = []
        self.syncs = 0
        self.fail_sync = False
        self.ids: dict[str, int] = {}
        self.stored_windows: dict[tuple[int, str], SeqWindow] = {}
        self.batches: list[WriteBatch] = []
        self.fail_next = 0

    def refs(self, vins: Iterable[str]) -> dict[str, VehicleRef]:
        return {v: self.vehicles[v] for v in vins if v in self.vehicles}

    def signal_ids(self, paths: Iterable[str]) -> dict[str, int]:
        for p in paths:
            self.ids.setdefault(p, len(self.ids) + 1)
        return {p: self.ids[p] for p in paths}

    def windows(self, keys: Iterable[tuple[int, str]]) -> dict[tuple[int, str], SeqWindow]:
        return {k: self.stored_windows[k].copy() for k in keys if k in self.stored_windows}

    def sync(self) -> None:
        if self.fail_sync:
            raise DurabilityLost("simulated failed fsync")
        self.syncs += 1
        self.unsynced.clear()

    def after_sync(self) -> None:
        pass  # nothing to tidy in memory

    def commit(self, batch: WriteBatch, *, durable: bool = True) -> None:
        if self.fail_next:
            self.fail_next -= 1
            raise StoreUnavailable("simulated outage")
        if not durable and self.defers_sync:
            self.unsynced.append(batch)
        self.batches.append(batch)
        self.stored_windows.update({k: w.copy() for k, w in batch.windows.items()})
