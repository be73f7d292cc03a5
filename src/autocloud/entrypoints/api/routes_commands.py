"""Remote commands: send, follow, list; the command catalog; the audit log; vehicles' keys."""

import csv
import io
from typing import Annotated, Literal

import msgspec
from fastapi import APIRouter, Depends, Header, Query, Request, Response, status
from fastapi.security import HTTPAuthorizationCredentials

from autocloud.domain.access import Principal
from autocloud.domain.command_records import Command
from autocloud.domain.timeparse import parse_time_ms
from autocloud.entrypoints.api import deps
from autocloud.entrypoints.api.deps import Plat, Who
from autocloud.entrypoints.api.schemas import PageOut
from autocloud.entrypoints.api.schemas_commands import (
    AuditOut,
    CommandIn,
    CommandOut,
    CommandSpecOut,
    KeyIn,
    KeyOut,
    SignedCommandIn,
)
from autocloud.services.command_delivery import command_view
from autocloud.services.commands import MAX_WAIT_S, CommandService

router = APIRouter(prefix="/v1")
LimitQ = Annotated[int, Query(ge=1, le=1000)]
StateQ = Annotated[str | None, Query(description="Only commands in this state.")]


def _svc(p: Plat) -> CommandService:
    assert p.commands is not None, "bootstrap wires the command service"
    return p.commands


# The two routes of every command (send, and the long poll) make one hop to a worker thread,
# not four: FastAPI runs each sync dependency (`Who`) on a worker thread of its own, and
# validates a returned model again on another; each hop waits for the event loop and the
# interpreter lock (up to the 5 ms switch interval while other threads run). So they
# authenticate in the endpoint, and answer with the command already encoded, as `CommandOut`
# (declared as the response model: the OpenAPI document is the same). The bearer scheme
# stays a dependency (async, no hop), so the OpenAPI security is the same too.
Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(deps._bearer)]


def _caller(
    request: Request, credentials: HTTPAuthorizationCredentials | None
) -> tuple[CommandService, Principal]:
    """The command service and the authenticated caller (as `Plat` and `Who` give them)."""
    return _svc(deps.platform_of(request)), deps.principal(request, credentials)


def _answer(command: Command, status_code: int = status.HTTP_200_OK) -> Response:
    """`CommandOut` of the command, encoded (its fields are `command_view`'s)."""
    body = msgspec.json.encode(command_view(command))
    return Response(body, status_code=status_code, media_type="application/json")


@router.get("/commands/catalog", tags=["commands"])
def catalog(who: Who, p: Plat) -> list[CommandSpecOut]:
    """Every command: parameters and ranges, who may send it, interlocks, default expiry."""
    return [CommandSpecOut.of(s) for s in _svc(p).catalog()]


@router.post(
    "/vehicles/{vin}/commands",
    status_code=status.HTTP_201_CREATED,
    tags=["commands"],
    response_model=CommandOut,
)
def send_command(
    vin: str,
    body: CommandIn,
    request: Request,
    credentials: Credentials,
    idempotency_key: Annotated[str | None, Header()] = None,
) -> Response:
    """Send a command. 201 with the new command (queued, or sent when the vehicle is
    online); 200 with the first command when the idempotency key was used before; 409 with
    a `reason` when a safety interlock refuses it; 429 when over the rate limit."""
    service, who = _caller(request, credentials)
    command, new = service.submit(
        who,
        vin,
        body.name,
        body.params,
        idempotency_key=body.idempotency_key or idempotency_key,
        expires_in_s=body.expires_in_s,
    )
    return _answer(command, status.HTTP_201_CREATED if new else status.HTTP_200_OK)


@router.post(
    "/vehicles/{vin}/commands/signed", status_code=status.HTTP_201_CREATED, tags=["commands"]
)
def send_signed_command(
    vin: str, body: SignedCommandIn, who: Who, p: Plat, response: Response
) -> CommandOut:
    """Forward a command an app signed itself with a key enrolled for the vehicle (an
    owner: with their own key). Checked like any command (role, rate limits, interlocks:
    201, 409, 429), and the signature against the enrolled key (422 when it does not hold);
    sent with the app's signature and counter unchanged. 200 with the first command when
    the same signed command is sent again."""
    command, new = _svc(p).submit_signed(who, vin, body.signed())
    if not new:
        response.status_code = status.HTTP_200_OK
    return CommandOut.of(command)


@router.get("/vehicles/{vin}/commands", tags=["commands"])
def vehicle_commands(
    vin: str,
    who: Who,
    p: Plat,
    state: StateQ = None,
    cursor: str | None = None,
    limit: LimitQ = 100,
) -> PageOut[CommandOut]:
    """The vehicle's commands, newest first."""
    page = _svc(p).find(who, vin=vin, state=state, cursor=cursor, limit=limit)
    return PageOut(items=[CommandOut.of(c) for c in page.items], next=page.next)


@router.get("/commands", tags=["commands"])
def list_commands(
    who: Who,
    p: Plat,
    brand: str | None = None,
    state: StateQ = None,
    cursor: str | None = None,
    limit: LimitQ = 100,
) -> PageOut[CommandOut]:
    """Commands of the caller's tenant (an owner's token: the owner's own), newest first."""
    page = _svc(p).find(who, brand=brand, state=state, cursor=cursor, limit=limit)
    return PageOut(items=[CommandOut.of(c) for c in page.items], next=page.next)


@router.get("/commands/{command_id}", tags=["commands"], response_model=CommandOut)
def get_command(
    command_id: str,
    request: Request,
    credentials: Credentials,
    wait_s: Annotated[
        float,
        Query(ge=0, le=MAX_WAIT_S, description="Long poll: answer once it has finished."),
    ] = 0,
) -> Response:
    """One command with its state, reason and timings."""
    service, who = _caller(request, credentials)
    return _answer(service.wait(who, command_id, wait_s))


@router.get("/audit", tags=["commands"], response_model=None)
def audit(
    who: Who,
    p: Plat,
    brand: str | None = None,
    vin: str | None = None,
    command_id: str | None = None,
    since: Annotated[str, Query(description="epoch ms, ISO 8601, or a span ago")] = "30d",
    until: Annotated[str, Query(description="epoch ms, ISO 8601, or a span ago")] = "now",
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=100_000)] = 1000,
    format: Literal["json", "csv"] = "json",
) -> PageOut[AuditOut] | Response:
    """The command audit log: who did what to which vehicle, when, and the outcome."""
    now = p.clock.now_ms()
    page = _svc(p).audit_log(
        who,
        vin=vin,
        command_id=command_id,
        brand=brand,
        since=parse_time_ms(since, now),
        until=parse_time_ms(until, now) + 1,
        cursor=cursor,
        limit=limit,
    )
    items = [AuditOut.of(a) for a in page.items]
    if format == "csv":
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=list(AuditOut.model_fields))
        writer.writeheader()
        writer.writerows(i.model_dump() for i in items)
        headers = {"Link": f'<?cursor={page.next}>; rel="next"'} if page.next else None
        return Response(out.getvalue(), media_type="text/csv", headers=headers)
    return PageOut(items=items, next=page.next)


@router.get("/vehicles/{vin}/keys", tags=["commands"])
def vehicle_keys(vin: str, who: Who, p: Plat) -> list[KeyOut]:
    """Public keys the vehicle trusts for commands: the platform's first, then app keys.
    A vehicle's provisioning reads this to enrol the keys."""
    return [KeyOut.of(k) for k in _svc(p).keys(who, vin)]


@router.post("/vehicles/{vin}/keys", status_code=status.HTTP_201_CREATED, tags=["commands"])
def add_vehicle_key(vin: str, body: KeyIn, who: Who, p: Plat) -> KeyOut:
    """Enrol an app's Ed25519 public key (an operator, or the vehicle's owner)."""
    return KeyOut.of(_svc(p).add_key(who, vin, body.public_key, body.label))


@router.delete(
    "/vehicles/{vin}/keys/{kid}", status_code=status.HTTP_204_NO_CONTENT, tags=["commands"]
)
def remove_vehicle_key(vin: str, kid: str, who: Who, p: Plat) -> Response:
    """Revoke an app key (an operator or admin: any app key of the vehicle; an owner: a key
    they enrolled). Its open commands expire, and the vehicle is sent a key list without it,
    so a command it signs is refused by the car (`unknown_key`). The platform's key is 409."""
    _svc(p).remove_key(who, vin, kid)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
