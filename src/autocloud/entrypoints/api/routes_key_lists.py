"""What a car confirmed of the signed key lists it was sent (docs/commands.md, key lifecycle)."""

from typing import Literal

from fastapi import APIRouter
from pydantic import BaseModel, Field

from autocloud.bootstrap import Platform
from autocloud.domain.command_keyset import KeyListState
from autocloud.entrypoints.api.deps import Plat, Who
from autocloud.services.command_keys import KeyLists

router = APIRouter(prefix="/v1")


def _service(p: Platform) -> KeyLists:
    assert p.key_lists is not None, "bootstrap wires the key-list service"
    return p.key_lists


class KeyListOut(BaseModel):
    vin: str
    serial: int | None = Field(description="The newest key list sent to the car (null: none).")
    status: Literal["none", "pending", "applied", "refused"] = Field(
        description="none: no list sent yet (the car trusts its provisioned keys); pending: "
        "the car has not confirmed the newest list; applied: it has; refused: it refused the "
        "newest list (`refused_reason`)."
    )
    behind: int | None = Field(description="Serials between the newest and the car's.")
    applied_serial: int | None = Field(description="The highest serial the car applied.")
    applied_ts: int | None = Field(description="Vehicle time of that confirmation.")
    applied_ms: int | None
    refused_serial: int | None = Field(
        description="The last list the car refused (null with a reason: unreadable)."
    )
    refused_reason: str | None = Field(examples=["bad_signature"])
    refused_ts: int | None
    refused_ms: int | None

    @classmethod
    def of(cls, vin: str, s: KeyListState) -> "KeyListOut":
        return cls(
            vin=vin,
            serial=s.serial,
            status=s.status.value,
            behind=s.behind,
            applied_serial=s.applied_serial,
            applied_ts=s.applied_ts,
            applied_ms=s.applied_ms,
            refused_serial=s.refused_serial,
            refused_reason=s.refused_reason,
            refused_ts=s.refused_ts,
            refused_ms=s.refused_ms,
        )


@router.get("/vehicles/{vin}/key-list", tags=["commands"])
def key_list(vin: str, who: Who, p: Plat) -> KeyListOut:
    """The newest signed key list sent to the vehicle and what the car answered: the serial
    it applied (`pending` while it lags behind) or the list it refused, with its reason."""
    vehicle, state = _service(p).state(who, vin)
    return KeyListOut.of(vehicle.vin, state)
