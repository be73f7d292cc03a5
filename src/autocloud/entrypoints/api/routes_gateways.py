"""Fleet gateways: one broker credential that publishes for many vehicles of a brand.

`POST /v1/gateways` answers the MQTT password once; grants and revocations take VIN lists
in bulk (up to 10,000 per call). Tenant-scoped like every /v1 route: another brand's gateway
answers as one that does not exist.
"""

from fastapi import APIRouter, Response, status
from pydantic import BaseModel, Field

from autocloud.domain.errors import StoreUnavailable
from autocloud.domain.gateway import GATEWAY_SUBTOPICS, Gateway
from autocloud.domain.protocol import TOPIC_ROOT
from autocloud.entrypoints.api.deps import Plat, Who
from autocloud.entrypoints.api.schemas import PageOut
from autocloud.services.gateways import GatewayService

router = APIRouter(prefix="/v1", tags=["gateways"])


class GatewayIn(BaseModel):
    name: str = Field(examples=["depot-1"], description="Lower-case slug, unique in the brand.")
    brand: str | None = Field(None, examples=["volta"], description="Default: the token's brand.")


class VinsIn(BaseModel):
    vins: list[str] = Field(examples=[["WVWZZZ1JZXW000001"]], max_length=10_000)


class GatewayOut(BaseModel):
    id: int
    brand: str
    name: str
    username: str
    vins: int = Field(description="How many VINs the gateway may publish for.")
    created_ms: int

    @classmethod
    def of(cls, g: Gateway) -> "GatewayOut":
        return cls(
            id=g.id,
            brand=g.brand,
            name=g.name,
            username=g.username,
            vins=g.vins,
            created_ms=g.created_ms,
        )


class GatewayCredentialOut(BaseModel):
    """The gateway's MQTT login. The password is shown only in this response."""

    mqtt_url: str
    username: str
    password: str
    client_id: str
    topics: list[str] = Field(description="What it may publish, for each granted VIN.")


class NewGatewayOut(BaseModel):
    gateway: GatewayOut
    credential: GatewayCredentialOut


class GrantedOut(BaseModel):
    gateway: GatewayOut
    vins: list[str]


def _service(p: Plat) -> GatewayService:
    if p.gateways is None:
        raise StoreUnavailable("fleet gateways are not wired in this platform")
    return p.gateways


@router.get("/gateways")
def list_gateways(who: Who, p: Plat, brand: str | None = None) -> PageOut[GatewayOut]:
    return PageOut(items=[GatewayOut.of(g) for g in _service(p).gateways(who, brand)], next=None)


@router.post("/gateways", status_code=status.HTTP_201_CREATED)
def create_gateway(body: GatewayIn, who: Who, p: Plat) -> NewGatewayOut:
    """Create a gateway (no VINs yet); the response holds its MQTT password, shown this once."""
    made = _service(p).create(who, body.brand, body.name)
    username = made.gateway.username
    credential = GatewayCredentialOut(
        mqtt_url=p.mqtt_url,
        username=username,
        password=made.secret,
        client_id=username,
        topics=[f"{TOPIC_ROOT}/{{vin}}/{sub}" for sub in GATEWAY_SUBTOPICS],
    )
    return NewGatewayOut(gateway=GatewayOut.of(made.gateway), credential=credential)


@router.get("/gateways/{gateway_id}")
def get_gateway(gateway_id: int, who: Who, p: Plat) -> GrantedOut:
    """The gateway and every VIN it may publish for, sorted."""
    service = _service(p)
    gateway = service.gateway(who, gateway_id)
    return GrantedOut(gateway=GatewayOut.of(gateway), vins=service.granted(who, gateway_id))


@router.post("/gateways/{gateway_id}/grant")
def grant_vins(gateway_id: int, body: VinsIn, who: Who, p: Plat) -> GatewayOut:
    """Let the gateway publish for these registered VINs of its brand (all or none)."""
    return GatewayOut.of(_service(p).grant(who, gateway_id, body.vins))


@router.post("/gateways/{gateway_id}/revoke")
def revoke_vins(gateway_id: int, body: VinsIn, who: Who, p: Plat) -> GatewayOut:
    """Take VINs back; VINs the gateway did not hold are ignored."""
    return GatewayOut.of(_service(p).revoke(who, gateway_id, body.vins))


@router.delete("/gateways/{gateway_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_gateway(gateway_id: int, who: Who, p: Plat) -> Response:
    _service(p).delete(who, gateway_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
