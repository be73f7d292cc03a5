"""Remote diagnostic sessions: request a UDS readout of a vehicle, read its report."""

from typing import Annotated, Any

from fastapi import APIRouter, Query, status
from pydantic import BaseModel, Field

from autocloud.bootstrap import Platform
from autocloud.domain.diag_session import DiagSession
from autocloud.domain.errors import StoreUnavailable
from autocloud.entrypoints.api.deps import Plat, Who
from autocloud.entrypoints.api.schemas import PageOut
from autocloud.services.diagnostic_sessions import DiagnosticSessions

router = APIRouter(prefix="/v1")
LimitQ = Annotated[int, Query(ge=1, le=1000)]


class DiagSessionIn(BaseModel):
    """What to read. Defaults: the ECUs of the vehicle's powertrain; every read."""

    ecus: list[str] = Field(
        default_factory=list,
        max_length=16,
        examples=[["ECM", "BMS"]],
        description="ECU names (ECM, TCM, ABS, BMS, BCM); empty: those of its powertrain.",
    )
    reads: list[str] | None = Field(
        None,
        max_length=8,
        examples=[["dtcs", "vin", "software", "odometer"]],
        description="dtcs, vin, software, odometer; null: all of them.",
    )
    clear_dtcs: bool = Field(
        False, description="Also clear the ECUs' DTCs (after reading them). Needs admin."
    )


class DiagSessionOut(BaseModel):
    id: str
    vin: str
    brand: str
    requested_by: str
    created_ms: int
    expires_ms: int
    completed_ms: int | None
    status: str = Field(description="pending, complete, incomplete (some ECUs silent), failed")
    ecus: list[str]
    reads: list[str]
    clear_dtcs: bool
    report: dict[str, Any] | None
    error: str | None

    @classmethod
    def of(cls, s: DiagSession) -> "DiagSessionOut":
        return cls(
            id=s.id,
            vin=s.vin,
            brand=s.brand,
            requested_by=s.requested_by,
            created_ms=s.created_ms,
            expires_ms=s.expires_ms,
            completed_ms=s.completed_ms,
            status=s.status,
            ecus=list(s.ecus),
            reads=list(s.reads),
            clear_dtcs=s.clear_dtcs,
            report=s.report,
            error=s.error,
        )


def _svc(p: Platform) -> DiagnosticSessions:
    if p.diagnostics is None:
        raise StoreUnavailable("remote diagnostics are not wired in this process")
    return p.diagnostics


@router.post(
    "/vehicles/{vin}/diagnostics", status_code=status.HTTP_202_ACCEPTED, tags=["diagnostics"]
)
def request_session(vin: str, body: DiagSessionIn, who: Who, p: Plat) -> DiagSessionOut:
    """Send UDS requests to the vehicle's ECUs; poll the session (or watch the `diag`
    stream event) for the report. Operator role; clearing DTCs needs admin."""
    found = _svc(p).request(who, vin, ecus=body.ecus, reads=body.reads, clear_dtcs=body.clear_dtcs)
    return DiagSessionOut.of(found)


@router.get("/vehicles/{vin}/diagnostics", tags=["diagnostics"])
def list_sessions(
    vin: str, who: Who, p: Plat, cursor: str | None = None, limit: LimitQ = 20
) -> PageOut[DiagSessionOut]:
    """The vehicle's sessions, newest first, with their reports."""
    page = _svc(p).sessions(who, vin, cursor=cursor, limit=limit)
    return PageOut(items=[DiagSessionOut.of(s) for s in page.items], next=page.next)


@router.get("/vehicles/{vin}/diagnostics/{session_id}", tags=["diagnostics"])
def get_session(vin: str, session_id: str, who: Who, p: Plat) -> DiagSessionOut:
    return DiagSessionOut.of(_svc(p).session(who, vin, session_id))
