"""Twins, the fleet overview, history with downsampling and export, dead letters, catalog."""

import csv
import io
from typing import Annotated, Any, Literal

import msgspec
from fastapi import APIRouter, Query, Request, Response
from pydantic import Field

from autocloud.domain.timeparse import parse_span_ms, parse_time_ms
from autocloud.domain.vin import normalise_vin
from autocloud.entrypoints.api.deps import Plat, Who
from autocloud.entrypoints.api.routes_health import ActiveCodeOut
from autocloud.entrypoints.api.schemas import (
    BucketOut,
    DeadLetterOut,
    FleetEntryOut,
    HistoryOut,
    HistoryPointOut,
    PageOut,
    SignalSpecOut,
    TwinOut,
)

router = APIRouter(prefix="/v1")
LimitQ = Annotated[int, Query(ge=1, le=1000)]


class TwinWithDtcsOut(TwinOut):
    active_dtcs: list[ActiveCodeOut] = Field(
        description="Active diagnostic trouble codes, decoded, worst first (see /health)."
    )


@router.get("/vehicles/{vin}/twin", tags=["twin"])
def get_twin(vin: str, who: Who, p: Plat) -> TwinWithDtcsOut:
    """Reported signals (last value and time of each), connection state, desired state and
    active trouble codes."""
    twin = p.telemetry.twin(who, vin)
    codes = p.health.active_codes(twin.vehicle) if p.health is not None else ()
    return TwinWithDtcsOut(
        **TwinOut.of(twin).model_dump(), active_dtcs=[ActiveCodeOut.of(c) for c in codes]
    )


@router.patch("/vehicles/{vin}/twin/desired", tags=["twin"])
def set_desired(vin: str, body: dict[str, Any], who: Who, p: Plat) -> TwinOut:
    """Set desired signal values (`{VSS path: value}`), validated against the catalog."""
    return TwinOut.of(p.telemetry.set_desired(who, vin, body))


@router.get("/fleet", tags=["twin"])
def fleet(
    who: Who,
    p: Plat,
    brand: str | None = None,
    model: str | None = None,
    online: bool | None = None,
    where: Annotated[
        list[str] | None,
        Query(
            description="Signal condition, e.g. "
            "Vehicle.Powertrain.TractionBattery.StateOfCharge.Current<20"
        ),
    ] = None,
    cursor: str | None = None,
    limit: LimitQ = 100,
) -> PageOut[FleetEntryOut]:
    page = p.telemetry.fleet(
        who, brand=brand, model=model, online=online, where=where or [], cursor=cursor, limit=limit
    )
    return PageOut(items=[FleetEntryOut.of(e) for e in page.items], next=page.next)


@router.get("/vehicles/{vin}/history", tags=["history"], response_model=HistoryOut)
def history(
    vin: str,
    request: Request,
    who: Who,
    p: Plat,
    signals: Annotated[list[str], Query(description="VSS paths; repeat or comma-separate.")],
    since: Annotated[str, Query(description="epoch ms, ISO 8601, or a span ago: 1h, 7d")] = "1h",
    until: Annotated[str, Query(description="epoch ms, ISO 8601, or now")] = "now",
    bucket: Annotated[str | None, Query(description="Downsample into buckets, e.g. 1m, 1h")] = None,
    format: Literal["json", "csv"] = "json",
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=100_000)] = 10_000,
) -> Any:
    vin = normalise_vin(vin)
    now = p.clock.now_ms()
    start, end = parse_time_ms(since, now), parse_time_ms(until, now)
    paths = [s.strip() for chunk in signals for s in chunk.split(",") if s.strip()]
    if bucket is not None:
        bucket_ms = parse_span_ms(bucket)
        buckets = [
            BucketOut.of(b) for b in p.telemetry.buckets(who, vin, paths, start, end, bucket_ms)
        ]
        if format == "csv":
            return _csv(
                ["path", "start", "count", "min", "avg", "max", "last"],
                [b.model_dump() for b in buckets],
            )
        return HistoryOut(vin=vin, since=start, until=end, bucket_ms=bucket_ms, buckets=buckets)
    rows, nxt = p.telemetry.history(who, vin, paths, start, end, cursor=cursor, limit=limit)
    points = [HistoryPointOut.of(r) for r in rows]
    if format == "csv":
        response = _csv(["path", "ts", "value"], [_flat(x.model_dump()) for x in points])
        if nxt:
            # The whole query with the cursor replaced: a bare `?cursor=` would drop signals.
            following = request.url.include_query_params(cursor=nxt)
            response.headers["Link"] = f'<{following.path}?{following.query}>; rel="next"'
        return response
    return HistoryOut(vin=vin, since=start, until=end, bucket_ms=None, points=points, next=nxt)


def _flat(row: dict[str, Any]) -> dict[str, Any]:
    value = row["value"]
    if isinstance(value, list | tuple | dict):
        row["value"] = msgspec.json.encode(value).decode()
    return row


def _csv(header: list[str], rows: list[dict[str, Any]]) -> Response:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=header)
    writer.writeheader()
    writer.writerows(rows)
    return Response(out.getvalue(), media_type="text/csv")


@router.get("/dead-letters", tags=["dead letters"])
def dead_letters(
    who: Who,
    p: Plat,
    brand: str | None = None,
    reason: str | None = None,
    vin: str | None = None,
    cursor: str | None = None,
    limit: LimitQ = 100,
) -> PageOut[DeadLetterOut]:
    """Refused messages and values, newest first, with reason and raw payload."""
    page = p.telemetry.dead_letters(
        who, reason=reason, vin=vin, cursor=cursor, limit=limit, brand=brand
    )
    return PageOut(items=[DeadLetterOut.of(d) for d in page.items], next=page.next)


@router.get("/dead-letters/summary", tags=["dead letters"])
def dead_letter_summary(who: Who, p: Plat, brand: str | None = None) -> dict[str, int]:
    """Count of dead letters per reason."""
    return p.telemetry.dead_letter_counts(who, brand)


@router.get("/signals", tags=["catalog"])
def signals(who: Who, p: Plat) -> PageOut[SignalSpecOut]:
    """The signals the platform understands natively (its catalog)."""
    items = [
        SignalSpecOut(
            path=s.path,
            datatype=str(s.datatype),
            unit=s.unit,
            min=s.min,
            max=s.max,
            allowed=list(s.allowed) if s.allowed else None,
            description=s.description,
        )
        for s in p.catalog.own()
    ]
    return PageOut(items=items, next=None)
