"""Ports to persistent state: registry, telemetry (twin + history) and dead letters.

Adapters: `adapters/sqlite.py` (embedded) and `adapters/postgres.py` (single node), both on
the shared SQL layer in `adapters/sql/`. One contract-test suite (`tests/contract`) runs
against each.
"""

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from autocloud.domain.records import (
    Brand,
    Bucket,
    DeadLetter,
    HistoryRow,
    Owner,
    Page,
    TokenInfo,
    Twin,
    Value,
    Vehicle,
    VehicleRef,
    WriteBatch,
)
from autocloud.domain.replay import SeqWindow


class Registry(Protocol):
    """Brands, vehicles, owners and API tokens."""

    def add_brand(self, brand_id: str, name: str, now_ms: int) -> Brand: ...
    def brands(self, scope: str | None) -> list[Brand]: ...
    def add_vehicle(self, vehicle: Vehicle, secret_digest: str) -> Vehicle: ...
    def vehicle(self, vin: str) -> Vehicle | None: ...
    def vehicles(
        self,
        scope: str | None,
        *,
        model: str | None,
        after: int,
        limit: int,
        vins: Collection[str] | None = None,
    ) -> list[Vehicle]:
        """`vins`: only these (an owner's token); None: any."""
        ...

    def owned_vins(self, owner_id: int) -> list[str]:
        """The VINs of the vehicles attached to an owner."""
        ...

    def set_secret(self, vin: str, secret_digest: str) -> None: ...
    def secret_digest(self, vin: str) -> str | None: ...
    def delete_vehicle(self, vin: str) -> None: ...
    def add_owner(self, brand: str, name: str, email: str, now_ms: int) -> Owner: ...
    def owner(self, owner_id: int) -> Owner | None: ...
    def owners(self, scope: str | None, *, after: int, limit: int) -> list[Owner]: ...
    def attach_owner(self, vehicle_id: int, owner_id: int) -> None: ...
    def detach_owner(self, vehicle_id: int, owner_id: int) -> None: ...
    def add_token(
        self,
        name: str,
        digest: str,
        role: str,
        brand: str | None,
        now_ms: int,
        owner_id: int | None = None,
    ) -> TokenInfo: ...
    def token_by_digest(self, digest: str) -> TokenInfo | None: ...
    def tokens(self, scope: str | None) -> list[TokenInfo]: ...
    def revoke_token(self, token_id: int, now_ms: int) -> None: ...


class TelemetryWriter(Protocol):
    """What the ingest pipeline reads and writes."""

    def refs(self, vins: Iterable[str]) -> dict[str, VehicleRef]: ...
    def signal_ids(self, paths: Iterable[str]) -> dict[str, int]: ...
    def windows(self, keys: Iterable[tuple[int, str]]) -> dict[tuple[int, str], SeqWindow]: ...
    def commit(self, batch: WriteBatch, *, durable: bool = True) -> None:
        """Write the whole batch in one transaction; raise StoreUnavailable on failure.

        `durable=False` on a store that `defers_sync`: the batch is visible at once and made
        durable by the next `sync()`, off the caller's thread; other stores ignore it."""

    @property
    def defers_sync(self) -> bool:
        """Whether `commit(durable=False)` leaves the wait for the disk to `sync()`."""

    def sync(self) -> None:
        """Make every commit so far durable (StoreUnavailable, or DurabilityLost when the
        disk refused and the data may be gone)."""

    def after_sync(self) -> None:
        """Housekeeping once the acknowledgements a sync allowed are out (SQLite: fold the
        WAL into the database file, after every sync round); DurabilityLost on a disk error."""


@dataclass(frozen=True, slots=True)
class SignalCondition:
    """A fleet filter on a twin value, e.g. SoC < 20."""

    path: str
    op: str  # one of < <= > >= = !=
    value: float | bool | str


class TelemetryReader(Protocol):
    """Twins, fleet overview and history."""

    def twin(self, vehicle: Vehicle) -> Twin: ...
    def fleet(
        self,
        scope: str | None,
        *,
        model: str | None,
        online: bool | None,
        conditions: Sequence[SignalCondition],
        after: int,
        limit: int,
        vins: Collection[str] | None = None,
    ) -> list[tuple[Vehicle, bool, Mapping[str, Value]]]: ...
    def history(
        self,
        vehicle_id: int,
        paths: Sequence[str],
        since: int,
        until: int,
        *,
        after: tuple[int, str] | None,
        limit: int,
    ) -> list[HistoryRow]: ...
    def buckets(
        self, vehicle_id: int, paths: Sequence[str], since: int, until: int, bucket_ms: int
    ) -> list[Bucket]: ...
    def set_desired(
        self, vehicle_id: int, path: str, value: Value, now_ms: int, by: str
    ) -> None: ...
    def set_desired_many(
        self, vehicle_id: int, values: Mapping[str, Value], now_ms: int, by: str
    ) -> None:
        """Several desired values of one vehicle in one transaction."""
        ...

    def online_count(self) -> int: ...
    def purge_history(self, before_ms: int) -> int:
        """Drop history (and events) before `before_ms`; returns the samples removed."""
        ...


class DeadLetterStore(Protocol):
    def dead_letters(
        self, scope: str | None, *, reason: str | None, vin: str | None, after: int, limit: int
    ) -> list[DeadLetter]: ...
    def dead_letter_counts(self, scope: str | None) -> dict[str, int]: ...
    def purge_dead_letters(self, before_ms: int) -> int: ...


__all__ = [
    "DeadLetterStore",
    "Page",
    "Registry",
    "SignalCondition",
    "TelemetryReader",
    "TelemetryWriter",
]
