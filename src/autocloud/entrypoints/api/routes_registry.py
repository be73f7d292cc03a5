"""Brands, vehicles, owners and tokens."""

from typing import Annotated

from fastapi import APIRouter, Query, Response, status

from autocloud.domain.access import Role
from autocloud.domain.protocol import TOPIC_ROOT
from autocloud.entrypoints.api.deps import Plat, Who
from autocloud.entrypoints.api.schemas import (
    AttachOwnerIn,
    BrandIn,
    BrandOut,
    CredentialOut,
    NewTokenOut,
    OwnerIn,
    OwnerOut,
    PageOut,
    ProvisionedOut,
    TokenIn,
    TokenOut,
    VehicleIn,
    VehicleOut,
)
from autocloud.services.registry import Provisioned

router = APIRouter(prefix="/v1")
LimitQ = Annotated[int, Query(ge=1, le=1000)]


def _provisioned(p: Plat, done: Provisioned) -> ProvisionedOut:
    vin = done.vehicle.vin
    credential = CredentialOut(
        mqtt_url=p.mqtt_url,
        username=vin,
        password=done.secret,
        client_id=vin,
        topic_root=f"{TOPIC_ROOT}/{vin}/",
    )
    return ProvisionedOut(vehicle=VehicleOut.of(done.vehicle), credential=credential)


@router.get("/brands", tags=["registry"])
def list_brands(who: Who, p: Plat, brand: str | None = None) -> PageOut[BrandOut]:
    return PageOut(items=[BrandOut.of(b) for b in p.registry.brands(who, brand)], next=None)


@router.post("/brands", status_code=status.HTTP_201_CREATED, tags=["registry"])
def create_brand(body: BrandIn, who: Who, p: Plat) -> BrandOut:
    return BrandOut.of(p.registry.add_brand(who, body.id, body.name))


@router.get("/vehicles", tags=["registry"])
def list_vehicles(
    who: Who,
    p: Plat,
    brand: str | None = None,
    model: str | None = None,
    cursor: str | None = None,
    limit: LimitQ = 100,
) -> PageOut[VehicleOut]:
    page = p.registry.vehicles(who, brand=brand, model=model, cursor=cursor, limit=limit)
    return PageOut(items=[VehicleOut.of(v) for v in page.items], next=page.next)


@router.post("/vehicles", status_code=status.HTTP_201_CREATED, tags=["registry"])
def create_vehicle(body: VehicleIn, who: Who, p: Plat) -> ProvisionedOut:
    """Register a vehicle; the response holds its MQTT password, shown this once."""
    return _provisioned(p, p.registry.add_vehicle(who, body.vin, body.brand, body.model))


@router.get("/vehicles/{vin}", tags=["registry"])
def get_vehicle(vin: str, who: Who, p: Plat) -> VehicleOut:
    return VehicleOut.of(p.registry.vehicle(who, vin))


@router.delete("/vehicles/{vin}", status_code=status.HTTP_204_NO_CONTENT, tags=["registry"])
def delete_vehicle(vin: str, who: Who, p: Plat) -> Response:
    p.registry.remove_vehicle(who, vin)  # ingest forgets it through the removal hooks
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/vehicles/{vin}/credential", tags=["registry"])
def rotate_credential(vin: str, who: Who, p: Plat) -> ProvisionedOut:
    """Replace the vehicle's MQTT password; the old one stops working."""
    return _provisioned(p, p.registry.rotate_secret(who, vin))


@router.post("/vehicles/{vin}/owners", tags=["registry"])
def attach_owner(vin: str, body: AttachOwnerIn, who: Who, p: Plat) -> VehicleOut:
    return VehicleOut.of(p.registry.attach_owner(who, vin, body.owner_id))


@router.delete("/vehicles/{vin}/owners/{owner_id}", tags=["registry"])
def detach_owner(vin: str, owner_id: int, who: Who, p: Plat) -> VehicleOut:
    return VehicleOut.of(p.registry.detach_owner(who, vin, owner_id))


@router.get("/owners", tags=["registry"])
def list_owners(
    who: Who, p: Plat, brand: str | None = None, cursor: str | None = None, limit: LimitQ = 100
) -> PageOut[OwnerOut]:
    page = p.registry.owners(who, brand=brand, cursor=cursor, limit=limit)
    return PageOut(items=[OwnerOut.of(o) for o in page.items], next=page.next)


@router.post("/owners", status_code=status.HTTP_201_CREATED, tags=["registry"])
def create_owner(body: OwnerIn, who: Who, p: Plat) -> OwnerOut:
    return OwnerOut.of(p.registry.add_owner(who, body.brand, body.name, body.email))


@router.get("/tokens", tags=["access"])
def list_tokens(who: Who, p: Plat, brand: str | None = None) -> PageOut[TokenOut]:
    return PageOut(items=[TokenOut.of(t) for t in p.registry.tokens(who, brand)], next=None)


@router.post("/tokens", status_code=status.HTTP_201_CREATED, tags=["access"])
def create_token(body: TokenIn, who: Who, p: Plat) -> NewTokenOut:
    """Issue a bearer token; the token is shown only in this response."""
    info, token = p.registry.create_token(
        who, body.name, Role.parse(body.role), body.brand, body.owner_id
    )
    return NewTokenOut(**TokenOut.of(info).model_dump(), token=token)


@router.delete("/tokens/{token_id}", status_code=status.HTTP_204_NO_CONTENT, tags=["access"])
def revoke_token(token_id: int, who: Who, p: Plat) -> Response:
    p.registry.revoke_token(who, token_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
