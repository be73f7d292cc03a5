"""Diagnostics: the ingest stage that keeps active DTCs, and the vehicle and fleet health.

The stage (:class:`DtcStage`, after ``record``) reads ``dtc.raised``/``dtc.cleared`` events
and the ``Vehicle.Diagnostics.DTCList`` signal, merges them into each vehicle's active set
(:class:`~autocloud.domain.dtc_active.VehicleDtcs`) and appends a
:class:`~autocloud.domain.dtc_active.DtcUpdate` per changed vehicle to ``WriteBatch.extra``,
so the store writes it in the ingest transaction. Its in-memory sets change only once the
batch is committed (``committed``, an after-commit listener), so a failed commit retries
from the same state; then it publishes a ``dtc`` change to the live stream.
"""

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from autocloud.domain.access import Principal
from autocloud.domain.dtc import (
    DecodedDtc,
    Severity,
    decode,
    parse_code,
    severity,
    severity_row,
)
from autocloud.domain.dtc_active import ActiveDtc, DtcTransition, DtcUpdate, VehicleDtcs
from autocloud.domain.dtc_catalog import DtcCatalog
from autocloud.domain.errors import InvalidInput
from autocloud.domain.protocol import Event, Reason
from autocloud.domain.records import Vehicle
from autocloud.ports.diagnostics import DtcStore
from autocloud.services.fanout import Change, Hub
from autocloud.services.ingest.stages import Batch, Item
from autocloud.services.registry import RegistryService

log = logging.getLogger(__name__)

DTC_LIST: Final = "Vehicle.Diagnostics.DTCList"
RAISED, CLEARED = "dtc.raised", "dtc.cleared"
CACHE_LIMIT: Final = 200_000  # vehicles whose active set is kept in memory
HISTORY_SHOWN: Final = 20


def _freeze_frame(data: Mapping[str, Any]) -> dict[str, Any] | None:
    frame = data.get("freeze_frame")
    return dict(frame) if isinstance(frame, dict) and frame else None


class DtcStage:
    """Ingest stage: events and DTC lists → active sets → `DtcUpdate` records."""

    def __init__(self, store: DtcStore, hub: Hub, catalog: DtcCatalog) -> None:
        self._store = store
        self._hub = hub
        self._catalog = catalog
        self._sets: dict[int, VehicleDtcs] = {}
        self._pending: tuple[Batch, dict[int, VehicleDtcs]] | None = None

    def __call__(self, batch: Batch) -> None:
        if DTC_LIST in batch.paths:
            relevant = [i for i in batch.live() if _is_relevant(i)]
        else:  # the usual batch: no DTC list anywhere, only events can matter
            relevant = [i for i in batch.live() if isinstance(i.message, Event) and _is_relevant(i)]
        self._pending = None
        if not relevant:
            return
        missing = {i.vehicle.id for i in relevant if i.vehicle and i.vehicle.id not in self._sets}
        if missing and len(self._sets) + len(missing) > CACHE_LIMIT:
            self._sets.clear()
            missing = {i.vehicle.id for i in relevant if i.vehicle}
        loaded = self._store.active_dtcs(missing) if missing else {}
        for vid, rows in loaded.items():
            self._sets[vid] = VehicleDtcs({d.code: d for d in rows})
        work: dict[int, VehicleDtcs] = {}
        updates: dict[int, DtcUpdate] = {}
        for item in relevant:
            assert item.vehicle is not None and item.vin is not None
            vid = item.vehicle.id
            if vid not in work:
                work[vid] = self._sets.get(vid, VehicleDtcs()).copy()
                updates[vid] = DtcUpdate(vid, item.vin, item.vehicle.brand, batch.now_ms)
            self._apply(batch, item, work[vid], updates[vid])
        for vid, update in updates.items():
            if update.upserts or update.removed or update.transitions:
                update.active = tuple(work[vid].active)
                batch.out.extra.append(update)
        self._pending = (batch, work)

    def _apply(self, batch: Batch, item: Item, dtcs: VehicleDtcs, update: DtcUpdate) -> None:
        message = item.message
        if isinstance(message, Event) and message.type in (RAISED, CLEARED):
            try:
                code = parse_code(message.data.get("code"))
            except InvalidInput as exc:
                batch.dead_letter(item, Reason.SCHEMA, f"{message.type} data.code: {exc}")
                return
            if message.type == RAISED:
                dtcs.raised(code, message.ts, _freeze_frame(message.data), update)
            else:
                dtcs.cleared(code, message.ts, update)
            return
        for path, ts, value in sorted((p for p in item.points if p[0] == DTC_LIST), key=_ts):
            codes, bad = [], []
            for entry in value if isinstance(value, tuple) else ():
                try:
                    codes.append(parse_code(entry))
                except InvalidInput:
                    bad.append(entry)
            if bad:
                detail = f"{path} lists {bad!r}, not DTCs (e.g. P0301); the other codes count"
                batch.dead_letter(item, Reason.NOT_ALLOWED, detail)
            dtcs.listed(codes, ts, update)

    def committed(self, batch: Batch) -> None:
        """After-commit listener: adopt the batch's active sets and tell the live stream."""
        if self._pending is None or self._pending[0] is not batch:
            return
        self._sets.update(self._pending[1])
        self._pending = None
        changes = [
            Change("dtc", u.vin, u.brand, self.change_data(u))
            for u in batch.out.extra
            if isinstance(u, DtcUpdate) and u.changed
        ]
        if changes:
            self._hub.publish(changes)

    def change_data(self, update: DtcUpdate) -> dict[str, Any]:
        def shown(t: DtcTransition) -> dict[str, Any]:
            return {
                "code": t.code,
                "ts": t.ts,
                "severity": severity(t.code).label,
                "description": self._catalog.describe(t.code),
            }

        return {
            "active": list(update.active),
            "raised": [shown(t) for t in update.transitions if t.raised],
            "cleared": [shown(t) for t in update.transitions if not t.raised],
        }


def _ts(point: tuple[str, int, Any]) -> int:
    return point[1]


def _is_relevant(item: Item) -> bool:
    message = item.message
    if isinstance(message, Event):
        return message.type in (RAISED, CLEARED)
    return any(p[0] == DTC_LIST for p in item.points)


# --- health --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CodeHealth:
    """An active code, explained."""

    active: ActiveDtc
    decoded: DecodedDtc
    description: str | None
    severity: Severity
    why: str | None  # the severity table row's reason


@dataclass(frozen=True, slots=True)
class VehicleHealth:
    vehicle: Vehicle
    codes: tuple[CodeHealth, ...]  # worst first, then oldest
    worst: Severity | None  # None: no active code
    since_ms: int | None  # oldest active code
    recent: tuple[DtcTransition, ...]


@dataclass(frozen=True, slots=True)
class CodeCount:
    code: str
    description: str | None
    severity: Severity
    vehicles: int


@dataclass(frozen=True, slots=True)
class ModelCount:
    model: str
    vehicles: int  # with at least one active code
    critical: int  # with a critical code


@dataclass(frozen=True, slots=True)
class CriticalVehicle:
    vin: str
    brand: str
    model: str
    codes: tuple[str, ...]
    since_ms: int


@dataclass(frozen=True, slots=True)
class FleetHealth:
    vehicles_with_codes: int
    codes_by_severity: dict[str, int]  # active codes
    vehicles_by_worst: dict[str, int]  # vehicles by their worst code
    by_code: tuple[CodeCount, ...]
    by_model: tuple[ModelCount, ...]
    critical: tuple[CriticalVehicle, ...]


class DiagnosticsService:
    """Health summaries of one vehicle and of a tenant's fleet."""

    def __init__(self, store: DtcStore, registry: RegistryService, catalog: DtcCatalog) -> None:
        self._store = store
        self._registry = registry
        self.catalog = catalog

    def explain(self, dtc: ActiveDtc) -> CodeHealth:
        row = severity_row(dtc.code)
        level = row.severity if row else Severity.INFO
        return CodeHealth(
            dtc, decode(dtc.code), self.catalog.describe(dtc.code), level, row.why if row else None
        )

    def active_codes(self, vehicle: Vehicle) -> tuple[CodeHealth, ...]:
        """A vehicle's active codes, explained, worst first (for its twin)."""
        active = self._store.active_dtcs([vehicle.id]).get(vehicle.id, [])
        return tuple(sorted((self.explain(d) for d in active), key=_worst_then_oldest))

    def vehicle_health(self, who: Principal, vin: str) -> VehicleHealth:
        vehicle = self._registry.vehicle(who, vin)
        active = self._store.active_dtcs([vehicle.id]).get(vehicle.id, [])
        codes = sorted((self.explain(d) for d in active), key=_worst_then_oldest)
        recent = self._store.dtc_history(vehicle.id, HISTORY_SHOWN)
        return VehicleHealth(
            vehicle,
            tuple(codes),
            max((c.severity for c in codes), default=None),
            min((c.active.since_ms for c in codes), default=None),
            tuple(recent),
        )

    def fleet_health(self, who: Principal, brand: str | None = None) -> FleetHealth:
        rows = self._store.fleet_dtcs(who.scope(brand))
        if who.vin_filter is not None:  # an owner's token: the owner's vehicles only
            rows = [r for r in rows if r.vin in who.vin_filter]
        by_vehicle: dict[str, list[Any]] = {}
        for row in rows:
            by_vehicle.setdefault(row.vin, []).append(row)
        codes_by_severity = {s.label: 0 for s in reversed(Severity)}
        vehicles_by_worst = dict(codes_by_severity)
        per_code: dict[str, set[str]] = {}
        per_model: dict[str, list[int]] = {}
        critical: list[CriticalVehicle] = []
        for vin, mine in by_vehicle.items():
            levels = [severity(r.code) for r in mine]
            worst = max(levels)
            vehicles_by_worst[worst.label] += 1
            for r, level in zip(mine, levels, strict=True):
                codes_by_severity[level.label] += 1
                per_code.setdefault(r.code, set()).add(vin)
            counts = per_model.setdefault(mine[0].model, [0, 0])
            counts[0] += 1
            if worst is Severity.CRITICAL:
                counts[1] += 1
                bad = tuple(r.code for r, lv in zip(mine, levels, strict=True) if lv == worst)
                since = min(r.since_ms for r in mine if r.code in bad)
                critical.append(CriticalVehicle(vin, mine[0].brand, mine[0].model, bad, since))
        by_code = sorted(
            (
                CodeCount(code, self.catalog.describe(code), severity(code), len(vins))
                for code, vins in per_code.items()
            ),
            key=lambda c: (-c.severity, -c.vehicles, c.code),
        )
        by_model = sorted(
            (ModelCount(m, n, c) for m, (n, c) in per_model.items()),
            key=lambda m: (-m.critical, -m.vehicles, m.model),
        )
        return FleetHealth(
            len(by_vehicle),
            codes_by_severity,
            vehicles_by_worst,
            tuple(by_code),
            tuple(by_model),
            tuple(sorted(critical, key=lambda c: c.since_ms)),
        )


def _worst_then_oldest(code: CodeHealth) -> tuple[int, int, str]:
    return -code.severity, code.active.since_ms, code.active.code
