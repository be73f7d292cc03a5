"""Live stream of twin, presence, event and dead-letter changes (Server-Sent Events)."""

import asyncio
from collections.abc import AsyncIterator, Callable

import msgspec
from fastapi import APIRouter, Request
from sse_starlette.sse import EventSourceResponse
from starlette.concurrency import run_in_threadpool

from autocloud.entrypoints.api.deps import Plat, Who
from autocloud.services.fanout import Change

router = APIRouter(prefix="/v1")


def change_filter(scope: str | None, vin: str | None) -> Callable[[Change], bool]:
    """What one subscriber may see: changes of brand `scope` (None: the whole group),
    and of vehicle `vin` only when one is given. Pure, so the tenant rule is testable."""

    def accepts(change: Change) -> bool:
        if scope is not None and change.brand != scope:
            return False
        return vin is None or change.vin == vin

    return accepts


@router.get("/stream", tags=["stream"], response_class=EventSourceResponse)
async def stream(
    request: Request, who: Who, p: Plat, vin: str | None = None, brand: str | None = None
) -> EventSourceResponse:
    """SSE: `event:` is twin, presence, event or dead_letter; `data:` is JSON.

    Filtered to the caller's tenant, and optionally to one vehicle or brand. A brand or a
    vehicle outside the caller's tenant is 404, like everywhere else in the API.
    """
    scope = who.scope(brand)
    if vin is not None:
        # 404 for a VIN the caller cannot see; and the VIN as ingest spells it (normalised).
        vin = (await run_in_threadpool(p.registry.vehicle, who, vin)).vin
    sub = p.hub.subscribe(change_filter(scope, vin))

    async def events() -> AsyncIterator[dict[str, str]]:
        try:
            yield {"event": "ready", "data": "{}"}
            while not await request.is_disconnected():
                try:
                    change = await asyncio.wait_for(sub.queue.get(), timeout=15)
                except TimeoutError:
                    continue
                if change is None:
                    break
                body = {"vin": change.vin, "brand": change.brand, **change.data}
                if sub.lagged:
                    body["lagged"] = sub.lagged
                    sub.lagged = 0
                yield {"event": change.kind, "data": msgspec.json.encode(body).decode()}
        finally:
            p.hub.unsubscribe(sub)

    return EventSourceResponse(events(), ping=15)
