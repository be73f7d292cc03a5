"""Remote diagnostic sessions: their values, and the readable report built from them.

Pure: the service hands in the session's requests (ECU, read, request bytes) and the
answers the vehicle sent; this module picks each request's final answer (skipping
0x78 responsePending), decodes it with `autocloud.domain.uds`, and lays the results out per
ECU with a summary (answers, negative answers, silence, the active codes found, whether the
VIN the ECUs hold matches the registered one). A request with no final answer is
``no_response``.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from autocloud.domain import uds

NO_RESPONSE = "no_response"


@dataclass(frozen=True, slots=True)
class DiagRequestRow:
    """One UDS request of a session: to `ecu`, for `read`, `request` hex-encoded."""

    id: str
    position: int
    ecu: str
    read: str
    request: str


@dataclass(frozen=True, slots=True)
class DiagAnswer:
    """A `diag/response` the vehicle sent, as stored by ingest."""

    request_id: str
    ecu: str
    response: str
    ts: int
    received_ms: int


@dataclass(frozen=True, slots=True)
class DiagSession:
    """An operator's readout of one vehicle; `report` once it is complete."""

    id: str
    vehicle_id: int
    vin: str
    brand: str
    requested_by: str
    created_ms: int
    expires_ms: int
    status: str  # pending, complete, failed
    ecus: tuple[str, ...]
    reads: tuple[str, ...]
    clear_dtcs: bool
    completed_ms: int | None = None
    report: dict[str, Any] | None = None
    error: str | None = None


def final_answers(answers: Sequence[DiagAnswer]) -> dict[str, DiagAnswer]:
    """Request id -> its last final answer (answers come oldest first)."""
    chosen: dict[str, DiagAnswer] = {}
    for answer in answers:
        if uds.is_final(bytes.fromhex(answer.response)):
            chosen[answer.request_id] = answer
    return chosen


def result(request: DiagRequestRow, answer: DiagAnswer | None) -> dict[str, Any]:
    """One request's outcome: the decoded answer, or `no_response`."""
    base: dict[str, Any] = {"read": request.read, "request": request.request}
    if answer is None:
        return {**base, "status": NO_RESPONSE}
    base |= {"response": answer.response, "received_ms": answer.received_ms}
    if answer.ecu != request.ecu:
        return {**base, "status": "invalid", "error": f"answered by {answer.ecu}"}
    return {**base, **uds.decode(request.read, bytes.fromhex(answer.response))}


def build(
    vin: str, requests: Sequence[DiagRequestRow], answers: Sequence[DiagAnswer]
) -> dict[str, Any]:
    """The report; `complete` is True when every request has a final answer."""
    chosen = final_answers(answers)
    by_ecu: dict[str, list[dict[str, Any]]] = {}
    for request in requests:
        by_ecu.setdefault(request.ecu, []).append(result(request, chosen.get(request.id)))
    ecus: list[dict[str, Any]] = []
    for name, results in by_ecu.items():
        spec = uds.ECUS.get(name)
        ecus.append(
            {
                "ecu": name,
                "address": f"0x{spec.address:03X}" if spec else None,
                "description": spec.description if spec else "",
                "results": results,
            }
        )
    every: list[dict[str, Any]] = [r for e in ecus for r in e["results"]]
    statuses = [r["status"] for r in every]
    codes = sorted({d["code"] for r in every for d in r.get("dtcs", ()) if d["active"]})
    vins = {r["vin"] for r in every if "vin" in r}
    return {
        "vin": vin,
        "complete": NO_RESPONSE not in statuses,
        "summary": {
            "requests": len(every),
            "positive": statuses.count("positive"),
            "negative": statuses.count("negative"),
            "invalid": statuses.count("invalid"),
            "no_response": statuses.count(NO_RESPONSE),
            "active_dtcs": codes,
            "vin_matches": (vins == {vin}) if vins else None,
        },
        "ecus": ecus,
    }
