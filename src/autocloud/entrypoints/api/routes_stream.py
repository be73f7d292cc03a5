"""Live stream of twin, presence, event and dead-letter changes (Server-Sent Events)."""

import asyncio
from collections.abc import AsyncIterator

import msgspec
from fastapi import APIRouter, Request
from sse_starlette.sse import EventSourceResponse

from autocloud.entrypoints.api.deps import Plat, Who
from autocloud.services.fanout import Change

router = APIRouter(prefix="/v1")


@router.get("/stream", tags=["stream"], response_class=EventSourceResponse)
async def stream(
    request: Request, who: Who, p: Plat, vin: str | None = None, brand: str | None = None
) -> EventSourceResponse:
    """SSE: `event:` is twin, presence, event or dead_letter; `data:` is JSON.

    Filtered to the caller's tenant, and optionally to one vehicle or brand.
    """
    scope = who.scope(brand)

    def accepts(change: Change) -> bool:
        if scope is not None and change.brand != scope:
            return False
        return vin is None or change.vin == vin

    sub = p.hub.subscribe(accepts)

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
