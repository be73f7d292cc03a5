"""Request and response bodies of the operator API (they shape /openapi.json)."""

import base64
from typing import Any, TypeVar

from pydantic import BaseModel, Field

from autocloud.domain.records import (
    Brand,
    Bucket,
    DeadLetter,
    HistoryRow,
    Owner,
    TokenInfo,
    Twin,
    Vehicle,
)
from autocloud.services.telemetry import FleetEntry

T = TypeVar("T")


class PageOut[T](BaseModel):
    items: list[T]
    next: str | None = Field(
        None, description="Pass as `cursor` for the next page; null at the end."
    )


class BrandIn(BaseModel):
    id: str = Field(examples=["volta"], description="Lower-case slug, the tenant's id.")
    name: str = Field(examples=["Volta Motors"])


class BrandOut(BaseModel):
    id: str
    name: str
    created_ms: int

    @classmethod
    def of(cls, b: Brand) -> "BrandOut":
        return cls(id=b.id, name=b.name, created_ms=b.created_ms)


class VehicleIn(BaseModel):
    vin: str = Field(examples=["WVWZZZ1JZXW000001"])
    brand: str = Field(examples=["volta"])
    model: str = Field("", examples=["e-Roadster"])


class VehicleOut(BaseModel):
    vin: str
    brand: str
    model: str
    model_year: int | None
    manufacturer: str | None
    created_ms: int
    owners: list[int]

    @classmethod
    def of(cls, v: Vehicle) -> "VehicleOut":
        return cls(
            vin=v.vin,
            brand=v.brand,
            model=v.model,
            model_year=v.model_year,
            manufacturer=v.manufacturer,
            created_ms=v.created_ms,
            owners=list(v.owners),
        )


class CredentialOut(BaseModel):
    """The vehicle's MQTT login. The password is shown only in this response."""

    mqtt_url: str
    username: str
    password: str
    client_id: str
    topic_root: str


class ProvisionedOut(BaseModel):
    vehicle: VehicleOut
    credential: CredentialOut


class OwnerIn(BaseModel):
    brand: str
    name: str
    email: str


class OwnerOut(BaseModel):
    id: int
    brand: str
    name: str
    email: str
    created_ms: int

    @classmethod
    def of(cls, o: Owner) -> "OwnerOut":
        return cls(id=o.id, brand=o.brand, name=o.name, email=o.email, created_ms=o.created_ms)


class AttachOwnerIn(BaseModel):
    owner_id: int


class TokenIn(BaseModel):
    name: str
    role: str = Field(description="viewer, operator or admin")
    brand: str | None = Field(None, description="Tenant scope; null for the whole group.")
    owner_id: int | None = Field(
        None, description="An owner's token (role viewer): sees and commands their vehicles only."
    )


class TokenOut(BaseModel):
    id: int
    name: str
    role: str
    brand: str | None
    created_ms: int
    revoked_ms: int | None
    owner_id: int | None = None

    @classmethod
    def of(cls, t: TokenInfo) -> "TokenOut":
        return cls(
            id=t.id,
            name=t.name,
            role=t.role,
            brand=t.brand,
            created_ms=t.created_ms,
            revoked_ms=t.revoked_ms,
            owner_id=t.owner_id,
        )


class NewTokenOut(TokenOut):
    token: str = Field(description="The bearer token; shown only in this response.")


class SignalOut(BaseModel):
    value: Any
    ts: int
    received_ms: int


class DesiredOut(BaseModel):
    value: Any
    set_ms: int
    set_by: str


class TwinOut(BaseModel):
    vehicle: VehicleOut
    online: bool
    online_since_ms: int | None
    sid: str | None
    reported: dict[str, SignalOut]
    desired: dict[str, DesiredOut]
    pending: list[str] = Field(description="Desired signals whose reported value differs.")

    @classmethod
    def of(cls, t: Twin) -> "TwinOut":
        reported = {
            s.path: SignalOut(value=s.value, ts=s.ts, received_ms=s.received_ms) for s in t.reported
        }
        desired = {
            d.path: DesiredOut(value=d.value, set_ms=d.set_ms, set_by=d.set_by) for d in t.desired
        }
        pending = [
            p for p, d in desired.items() if p not in reported or reported[p].value != d.value
        ]
        return cls(
            vehicle=VehicleOut.of(t.vehicle),
            online=t.online,
            online_since_ms=t.online_since_ms,
            sid=t.sid,
            reported=reported,
            desired=desired,
            pending=pending,
        )


class FleetEntryOut(BaseModel):
    vin: str
    brand: str
    model: str
    online: bool
    signals: dict[str, Any]

    @classmethod
    def of(cls, e: FleetEntry) -> "FleetEntryOut":
        v = e.vehicle
        return cls(
            vin=v.vin, brand=v.brand, model=v.model, online=e.online, signals=dict(e.signals)
        )


class HistoryPointOut(BaseModel):
    path: str
    ts: int
    value: Any

    @classmethod
    def of(cls, r: HistoryRow) -> "HistoryPointOut":
        return cls(path=r.path, ts=r.ts, value=r.value)


class BucketOut(BaseModel):
    path: str
    start: int
    count: int
    min: float
    avg: float
    max: float
    last: float

    @classmethod
    def of(cls, b: Bucket) -> "BucketOut":
        return cls(
            path=b.path, start=b.start, count=b.count, min=b.min, avg=b.avg, max=b.max, last=b.last
        )


class HistoryOut(BaseModel):
    vin: str
    since: int
    until: int
    bucket_ms: int | None
    points: list[HistoryPointOut] | None = None
    buckets: list[BucketOut] | None = None
    next: str | None = None


class DeadLetterOut(BaseModel):
    id: int
    received_ms: int
    vin: str | None
    brand: str | None
    topic: str
    reason: str
    detail: str
    payload: str = Field(description="The raw payload: UTF-8 text when it decodes, else base64.")
    payload_encoding: str

    @classmethod
    def of(cls, d: DeadLetter) -> "DeadLetterOut":
        try:
            text, encoding = d.payload.decode("utf-8"), "utf-8"
        except UnicodeDecodeError:
            text, encoding = base64.b64encode(d.payload).decode(), "base64"
        assert d.id is not None
        return cls(
            id=d.id,
            received_ms=d.received_ms,
            vin=d.vin,
            brand=d.brand,
            topic=d.topic,
            reason=d.reason,
            detail=d.detail,
            payload=text,
            payload_encoding=encoding,
        )


class SignalSpecOut(BaseModel):
    path: str
    datatype: str
    unit: str | None
    min: float | None
    max: float | None
    allowed: list[str] | None
    description: str
