"""Reading the fleet: twins, the fleet overview, history and dead letters, within a tenant."""

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from autocloud.domain.access import Principal, Role
from autocloud.domain.catalog import Catalog, Datatype
from autocloud.domain.clock import Clock
from autocloud.domain.errors import InvalidInput, UnknownSignal
from autocloud.domain.records import Bucket, DeadLetter, HistoryRow, Page, Twin, Value, Vehicle
from autocloud.domain.vin import normalise_vin
from autocloud.ports.stores import DeadLetterStore, SignalCondition, TelemetryReader
from autocloud.services.registry import MAX_ID, RegistryService, cursor_of, parse_cursor

_CONDITION = re.compile(r"^\s*([A-Za-z0-9_.]+)\s*(<=|>=|!=|<|>|=)\s*(.+?)\s*$")
MAX_RAW_ROWS = 100_000
MAX_BUCKETS = 10_000
INTEGER_TYPES = frozenset(
    {Datatype.UINT8, Datatype.INT8, Datatype.UINT16, Datatype.INT16}
    | {Datatype.UINT32, Datatype.INT32, Datatype.UINT64, Datatype.INT64}
)
FLOAT_TYPES = frozenset({Datatype.FLOAT, Datatype.DOUBLE})


@dataclass(frozen=True, slots=True)
class FleetEntry:
    vehicle: Vehicle
    online: bool
    signals: Mapping[str, Value]


def parse_condition(text: str, catalog: Catalog) -> SignalCondition:
    """`Vehicle.Powertrain.TractionBattery.StateOfCharge.Current<20` as a SignalCondition."""
    match = _CONDITION.match(text)
    if not match:
        raise InvalidInput(f"condition {text!r} must look like Vehicle.Speed>100")
    path, op, raw = match.groups()
    if path not in catalog:
        raise UnknownSignal(f"{path} is not a known signal")
    value: float | bool | str
    if raw in ("true", "false"):
        value = raw == "true"
    else:
        try:
            value = float(raw)
        except ValueError:
            if op not in ("=", "!="):
                raise InvalidInput(f"{op} needs a number, got {raw!r}") from None
            value = raw.strip("\"'")
    return SignalCondition(path, op, value)


class TelemetryService:
    def __init__(
        self,
        reader: TelemetryReader,
        dead: DeadLetterStore,
        registry: RegistryService,
        catalog: Catalog,
        clock: Clock,
    ) -> None:
        self._reader = reader
        self._dead = dead
        self._registry = registry
        self._catalog = catalog
        self._clock = clock

    def twin(self, who: Principal, vin: str) -> Twin:
        return self._reader.twin(self._registry.vehicle(who, vin))

    def set_desired(self, who: Principal, vin: str, desired: Mapping[str, object]) -> Twin:
        who.require(Role.OPERATOR)
        vehicle = self._registry.vehicle(who, vin)
        checked = {}
        for path, value in desired.items():
            result = self._catalog.check(path, value)
            if result.rejection is not None:
                raise InvalidInput(result.detail)
            checked[path] = result.value
        self._reader.set_desired_many(vehicle.id, checked, self._clock.now_ms(), who.name)
        return self._reader.twin(vehicle)

    def fleet(
        self,
        who: Principal,
        *,
        brand: str | None,
        model: str | None,
        online: bool | None,
        where: Sequence[str],
        cursor: str | None,
        limit: int,
    ) -> Page:
        conditions = [parse_condition(w, self._catalog) for w in where]
        rows = self._reader.fleet(
            who.scope(brand),
            model=model,
            online=online,
            conditions=conditions,
            after=parse_cursor(cursor),
            limit=limit,
            vins=who.vin_filter,
        )
        entries = tuple(FleetEntry(v, on, s) for v, on, s in rows)
        return Page(entries, cursor_of(entries[-1].vehicle.id if len(entries) == limit else None))

    def _paths(self, paths: Sequence[str]) -> list[str]:
        if not paths:
            raise InvalidInput("name at least one signal path")
        unknown = [p for p in paths if p not in self._catalog]
        if unknown:
            raise UnknownSignal(f"unknown signal(s): {', '.join(unknown)}")
        return list(dict.fromkeys(paths))

    @staticmethod
    def _range(since: int, until: int) -> None:
        for name, value in (("since", since), ("until", until)):
            if not -MAX_ID <= value <= MAX_ID:
                raise InvalidInput(f"{name} ({value}) is not a representable time in ms")
        if until <= since:
            raise InvalidInput(f"until ({until}) must be after since ({since})")

    def history(
        self,
        who: Principal,
        vin: str,
        paths: Sequence[str],
        since: int,
        until: int,
        *,
        cursor: str | None,
        limit: int,
    ) -> tuple[list[HistoryRow], str | None]:
        vehicle = self._registry.vehicle(who, vin)
        self._range(since, until)
        after = _history_cursor(cursor)
        # A page is at most MAX_RAW_ROWS long; a full page (of the capped size) has a next one.
        page = max(1, min(limit, MAX_RAW_ROWS))
        rows = self._reader.history(
            vehicle.id, self._paths(paths), since, until, after=after, limit=page
        )
        nxt = f"{rows[-1].ts}:{rows[-1].path}" if len(rows) == page else None
        return [self._typed(r) for r in rows], nxt

    def _typed(self, row: HistoryRow) -> HistoryRow:
        """Numbers come back in their signal's type whatever the store's JSON made of them.

        Integer signals migrated from the old layout were stored as floats; PostgreSQL's
        jsonb keeps numbers as exact decimals, so a float such as 1e20 reads back as an int.
        """
        spec = self._catalog.spec(row.path)
        if spec is None or isinstance(row.value, bool):
            return row
        if spec.datatype in INTEGER_TYPES and isinstance(row.value, float):
            return HistoryRow(row.path, row.ts, int(row.value))
        if spec.datatype in FLOAT_TYPES and isinstance(row.value, int):
            return HistoryRow(row.path, row.ts, float(row.value))
        return row

    def buckets(
        self, who: Principal, vin: str, paths: Sequence[str], since: int, until: int, bucket_ms: int
    ) -> list[Bucket]:
        vehicle = self._registry.vehicle(who, vin)
        self._range(since, until)
        if bucket_ms <= 0:
            raise InvalidInput("bucket must be a positive duration")
        if (until - since) // bucket_ms > MAX_BUCKETS:
            raise InvalidInput(
                f"{(until - since) // bucket_ms} buckets is too many (max {MAX_BUCKETS}); "
                "choose a larger bucket or a shorter range"
            )
        return self._reader.buckets(vehicle.id, self._paths(paths), since, until, bucket_ms)

    def dead_letters(
        self,
        who: Principal,
        *,
        reason: str | None,
        vin: str | None,
        cursor: str | None,
        limit: int,
        brand: str | None = None,
    ) -> Page:
        items = self._dead.dead_letters(
            who.scope(brand),
            reason=reason,
            vin=normalise_vin(vin) if vin else None,
            after=parse_cursor(cursor),
            limit=limit,
        )
        last = items[-1].id if len(items) == limit else None
        return Page(tuple(items), cursor_of(last))

    def dead_letter_counts(self, who: Principal, brand: str | None = None) -> dict[str, int]:
        return self._dead.dead_letter_counts(who.scope(brand))

    def purge(self, history_days: float, dead_letter_days: float) -> tuple[int, int]:
        """Retention: drop history and dead letters older than the configured ages."""
        now = self._clock.now_ms()
        history = self._reader.purge_history(now - int(history_days * 86_400_000))
        dead = self._dead.purge_dead_letters(now - int(dead_letter_days * 86_400_000))
        return history, dead


def _history_cursor(cursor: str | None) -> tuple[int, str] | None:
    if not cursor:
        return None
    ts, _, path = cursor.partition(":")
    if not ts.isdigit() or int(ts) > MAX_ID or not path:
        raise InvalidInput(f"cursor {cursor!r} is not one this API returned")
    return int(ts), path


__all__ = ["DeadLetter", "FleetEntry", "TelemetryService", "parse_condition"]
