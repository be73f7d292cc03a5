"""Vehicle and fleet health: active DTCs decoded, described and graded (docs/diagnostics.md)."""

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, Field

from autocloud.bootstrap import Platform
from autocloud.domain.dtc_active import DtcTransition
from autocloud.entrypoints.api.deps import Plat, Who
from autocloud.services.diagnostics import CodeHealth, DiagnosticsService, FleetHealth

router = APIRouter(prefix="/v1", tags=["health"])


def _service(p: Platform) -> DiagnosticsService:
    assert p.health is not None, "bootstrap wires the diagnostics service"
    return p.health


class ActiveCodeOut(BaseModel):
    code: str
    description: str | None = Field(description="From the DTC catalog; null without one.")
    severity: str = Field(examples=["critical"])
    severity_reason: str | None = Field(description="The severity table row that applies.")
    system: str = Field(examples=["powertrain"])
    defined_by: str = Field(examples=["SAE/ISO (generic)"])
    subsystem: str | None = Field(examples=["ignition system or misfire"])
    since_ms: int = Field(description="Vehicle time the code was raised.")
    last_seen_ms: int
    source: str = Field(description="What raised it: event or list (Vehicle.Diagnostics.DTCList).")
    freeze_frame: dict[str, Any] | None

    @classmethod
    def of(cls, c: CodeHealth) -> "ActiveCodeOut":
        return cls(
            code=c.active.code,
            description=c.description,
            severity=c.severity.label,
            severity_reason=c.why,
            system=c.decoded.system_name,
            defined_by=c.decoded.defined_by,
            subsystem=c.decoded.subsystem_name,
            since_ms=c.active.since_ms,
            last_seen_ms=c.active.last_seen_ms,
            source=c.active.source,
            freeze_frame=dict(c.active.freeze_frame) if c.active.freeze_frame else None,
        )


class TransitionOut(BaseModel):
    code: str
    raised: bool
    ts: int
    source: str

    @classmethod
    def of(cls, t: DtcTransition) -> "TransitionOut":
        return cls(code=t.code, raised=t.raised, ts=t.ts, source=t.source)


class VehicleHealthOut(BaseModel):
    vin: str
    brand: str
    model: str
    worst: str | None = Field(description="Worst severity of the active codes; null: none.")
    since_ms: int | None = Field(description="When the oldest active code was raised.")
    active: list[ActiveCodeOut] = Field(description="Worst first, then oldest.")
    recent: list[TransitionOut] = Field(description="Latest raises and clears, newest first.")


class CodeCountOut(BaseModel):
    code: str
    description: str | None
    severity: str
    vehicles: int


class ModelCountOut(BaseModel):
    model: str
    vehicles: int = Field(description="Vehicles of this model with an active code.")
    critical: int = Field(description="... of which with a critical one.")


class CriticalVehicleOut(BaseModel):
    vin: str
    brand: str
    model: str
    codes: list[str]
    since_ms: int


class FleetHealthOut(BaseModel):
    vehicles_with_codes: int
    codes_by_severity: dict[str, int]
    vehicles_by_worst: dict[str, int]
    by_code: list[CodeCountOut]
    by_model: list[ModelCountOut]
    critical: list[CriticalVehicleOut] = Field(description="Vehicles with a critical code.")

    @classmethod
    def of(cls, f: FleetHealth) -> "FleetHealthOut":
        return cls(
            vehicles_with_codes=f.vehicles_with_codes,
            codes_by_severity=f.codes_by_severity,
            vehicles_by_worst=f.vehicles_by_worst,
            by_code=[
                CodeCountOut(
                    code=c.code,
                    description=c.description,
                    severity=c.severity.label,
                    vehicles=c.vehicles,
                )
                for c in f.by_code
            ],
            by_model=[
                ModelCountOut(model=m.model, vehicles=m.vehicles, critical=m.critical)
                for m in f.by_model
            ],
            critical=[
                CriticalVehicleOut(
                    vin=v.vin,
                    brand=v.brand,
                    model=v.model,
                    codes=list(v.codes),
                    since_ms=v.since_ms,
                )
                for v in f.critical
            ],
        )


@router.get("/vehicles/{vin}/health")
def vehicle_health(vin: str, who: Who, p: Plat) -> VehicleHealthOut:
    """The vehicle's active DTCs (decoded, described, graded), worst severity, since when."""
    h = _service(p).vehicle_health(who, vin)
    return VehicleHealthOut(
        vin=h.vehicle.vin,
        brand=h.vehicle.brand,
        model=h.vehicle.model,
        worst=h.worst.label if h.worst is not None else None,
        since_ms=h.since_ms,
        active=[ActiveCodeOut.of(c) for c in h.codes],
        recent=[TransitionOut.of(t) for t in h.recent],
    )


@router.get("/fleet/health")
def fleet_health(who: Who, p: Plat, brand: str | None = None) -> FleetHealthOut:
    """Active DTCs across the tenant's fleet: by severity, by code, by model; critical cars."""
    return FleetHealthOut.of(_service(p).fleet_health(who, brand))
