"""Request and response bodies of the remote-command API (generated from the command table)."""

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from autocloud.domain.command_keyset import PERMITTED, KeyRole
from autocloud.domain.command_records import AuditEntry, Command, VehicleKey
from autocloud.domain.command_signing import SignedCommand
from autocloud.domain.commands import CommandSpec, Param
from autocloud.services.command_delivery import command_view


class CommandIn(BaseModel):
    name: str = Field(examples=["lock"], description="A command of GET /v1/commands/catalog.")
    params: dict[str, Any] = Field(default_factory=dict, examples=[{}])
    idempotency_key: str | None = Field(
        None,
        description="Or the Idempotency-Key header: a retried call with the same key returns "
        "the first command instead of sending another.",
    )
    expires_in_s: int | None = Field(
        None, description="Seconds the command may wait for its vehicle; default per command."
    )


class SignedCommandIn(BaseModel):
    """A command an app signed itself (docs/commands.md, "Owner apps"): exactly the fields
    the vehicle verifies, as the app signed them; the platform forwards them unchanged."""

    model_config = ConfigDict(strict=True, extra="forbid")

    v: int = Field(examples=[1])
    id: str = Field(examples=["a1b2c3d4e5f60718"], description="8-64 of [A-Za-z0-9_-].")
    vin: str = Field(examples=["WVWZZZ1JZXW000001"])
    name: str = Field(examples=["lock"])
    params: dict[str, Any] = Field(description="In full, defaults included.", examples=[{}])
    issued: int = Field(description="ms since the epoch")
    expires: int = Field(description="ms since the epoch")
    counter: int = Field(description="Above the last one the app used with this key and car.")
    kid: str = Field(description="The enrolled key's id (GET /v1/vehicles/{vin}/keys).")
    sig: str = Field(description="base64url Ed25519 signature of the canonical fields.")

    def signed(self) -> SignedCommand:
        return SignedCommand(**self.model_dump())


class TimingsOut(BaseModel):
    queued_ms: int
    sent_ms: int | None
    delivered_ms: int | None
    finished_ms: int | None


class CommandOut(BaseModel):
    id: str
    vin: str
    brand: str
    name: str
    params: dict[str, Any]
    state: str = Field(description="queued, sent, delivered, succeeded, failed, rejected, expired")
    reason: str | None = Field(description="Why it failed, was rejected or expired.")
    result: dict[str, Any] = Field(description="Data of the vehicle's final answer.")
    caller: str
    issued_ms: int
    expires_ms: int
    counter: int | None
    kid: str | None = Field(description="Id of the key that signed it.")
    timings: TimingsOut

    @classmethod
    def of(cls, c: Command) -> "CommandOut":
        return cls.model_validate(command_view(c))


class ParamOut(BaseModel):
    name: str
    type: str
    description: str
    required: bool
    min: float | None
    max: float | None
    unit: str | None
    default: Any

    @classmethod
    def of(cls, p: Param) -> "ParamOut":
        return cls(
            name=p.name,
            type=p.type.value,
            description=p.description,
            required=p.required,
            min=p.min,
            max=p.max,
            unit=p.unit,
            default=p.default,
        )


class InterlockOut(BaseModel):
    reason: str
    signal: str
    refused_when: str
    setting: str | None


class CommandSpecOut(BaseModel):
    name: str
    summary: str
    min_role: str
    owner_may: bool
    default_expiry_s: int
    electric_only: bool
    params: list[ParamOut]
    interlocks: list[InterlockOut]
    desired: dict[str, Any] = Field(description="Twin paths it sets; '{param}' takes a param.")

    @classmethod
    def of(cls, s: CommandSpec) -> "CommandSpecOut":
        return cls(
            name=s.name,
            summary=s.summary,
            min_role=s.min_role.name.lower(),
            owner_may=s.owner_may,
            default_expiry_s=s.timeout_s,
            electric_only=s.electric_only,
            params=[ParamOut.of(p) for p in s.params],
            interlocks=[
                InterlockOut(
                    reason=i.reason,
                    signal=i.signal,
                    refused_when=f"{i.signal} {i.op} {i.limit:g}",
                    setting=i.setting,
                )
                for i in s.interlocks
            ],
            desired={d.path: d.value if d.param is None else f"{{{d.param}}}" for d in s.desired},
        )


class AuditOut(BaseModel):
    at_ms: int
    brand: str | None
    vin: str | None
    command_id: str | None
    name: str | None
    caller: str
    action: str
    detail: str

    @classmethod
    def of(cls, a: AuditEntry) -> "AuditOut":
        return cls(
            at_ms=a.at_ms,
            brand=a.brand,
            vin=a.vin,
            command_id=a.command_id,
            name=a.name,
            caller=a.caller,
            action=a.action,
            detail=a.detail,
        )


class KeyIn(BaseModel):
    public_key: str = Field(description="Ed25519 public key: 32 bytes as 64 hex characters.")
    label: str = Field(examples=["Alice's phone"])


class KeyOut(BaseModel):
    kid: str
    public_key: str = Field(description="Hex of the 32 raw bytes.")
    label: str
    owner_id: int | None
    added_ms: int
    added_by: str
    role: KeyRole = Field(
        description="platform: signs every command; owner: the commands an owner may send; "
        "operator: the commands an operator may send."
    )
    commands: list[str] = Field(description="The commands a key of this role may sign.")

    @classmethod
    def of(cls, k: VehicleKey) -> "KeyOut":
        return cls(
            kid=k.kid,
            public_key=k.public_key.hex(),
            label=k.label,
            owner_id=k.owner_id,
            added_ms=k.added_ms,
            added_by=k.added_by,
            role=k.role,
            commands=sorted(PERMITTED[k.role]),
        )
