"""Live stream of twin, presence, event and dead-letter changes (Server-Sent Events)."""

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Collection
from typing import Annotated

import msgspec
from fastapi import APIRouter, Query, Request
from sse_starlette.sse import EventSourceResponse
from starlette.concurrency import run_in_threadpool

from autocloud.domain.errors import InvalidInput, RateLimited
from autocloud.entrypoints.api.deps import Plat, Who
from autocloud.entrypoints.api.sse_gzip import GzipEventSourceResponse, accepts_gzip
from autocloud.services.fanout import Change, Subscription

router = APIRouter(prefix="/v1")
OWNED_REFRESH_S = 5.0  # an owner's stream re-reads the owner's VINs this often
CHUNK_EVENTS = 1000  # changes already queued that go out together in one chunk, at most
_encode = msgspec.json.encode
POSITIONS = "positions"  # a kind made here: the interval's twin/presence changes, compact
KindsQ = Annotated[
    str | None,
    Query(
        description="Comma-separated kinds to send (default: all but positions). `positions`:"
        " once per `interval`, one event with the position and state of every vehicle that"
        " changed (columns: vin, lat, lon, heading, speed, soc, fuel, online, charging)."
    ),
]
# Every kind a stream can carry: the hub's (services publish them) and `positions` (made
# here). A new kind is added here (and to web/src/stream.js KINDS for the dashboard).
STREAM_KINDS: tuple[str, ...] = (
    "twin",
    "presence",
    "event",
    "dead_letter",
    "command",
    "alert",
    "dtc",
    "diag",
    POSITIONS,
)
IntervalQ = Annotated[float, Query(ge=0.2, le=60, description="Seconds between positions.")]


def change_filter(
    scope: str | None, vin: str | None, vins: Callable[[], Collection[str] | None] | None = None
) -> Callable[[Change], bool]:
    """What one subscriber may see: changes of brand `scope` (None: the whole group),
    of vehicle `vin` only when one is given, and of the VINs `vins()` returns when it
    returns a set (an owner's token). Pure, so the tenant rule is testable."""

    def accepts(change: Change) -> bool:
        if scope is not None and change.brand != scope:
            return False
        allowed = vins() if vins is not None else None
        if allowed is not None and change.vin not in allowed:
            return False
        return vin is None or change.vin == vin

    return accepts


def take_queued(queue: "asyncio.Queue[Change | None]", limit: int) -> list[Change | None]:
    """What is already queued (at most `limit`), without waiting; stops after the closing
    None, which comes last."""
    out: list[Change | None] = []
    while len(out) < limit and not queue.empty():
        item = queue.get_nowait()
        out.append(item)
        if item is None:
            break
    return out


def encode_changes(
    changes: list[Change | None], owned: Collection[str] | None, sub: Subscription
) -> bytes:
    """The changes as SSE events in one chunk (what ingest committed together goes out in one
    write and, gzipped, one flush: a flush per event cost the event loop most of its time at a
    few hundred events a second). An owner's stream drops VINs no longer the owner's."""
    out: list[bytes] = []
    for change in changes:
        if change is None:
            break
        if owned is not None and change.vin not in owned:
            continue  # queued before the owner's VINs were refreshed
        body = {"vin": change.vin, "brand": change.brand, **change.data}
        if sub.lagged:
            body["lagged"] = sub.lagged
            sub.lagged = 0
        out.append(b"event: %s\r\ndata: %s\r\n\r\n" % (change.kind.encode(), _encode(body)))
    return b"".join(out)


def wanted_kinds(kinds: str | None) -> frozenset[str] | None:
    """The kinds a `kinds=` parameter names (None: not given, every kind but positions).
    An empty list or a kind the stream does not know (a typo would otherwise give a stream
    that never sends anything) is InvalidInput."""
    if kinds is None:
        return None
    named = frozenset(k.strip() for k in kinds.split(",") if k.strip())
    unknown = sorted(named.difference(STREAM_KINDS))
    if not named or unknown:
        what = f"unknown kinds {', '.join(map(repr, unknown))[:200]}" if unknown else "no kind"
        raise InvalidInput(f"kinds names {what}; the stream's kinds are: {', '.join(STREAM_KINDS)}")
    return named


@router.get("/stream", tags=["stream"], response_class=EventSourceResponse)
async def stream(
    request: Request,
    who: Who,
    p: Plat,
    vin: str | None = None,
    brand: str | None = None,
    kinds: KindsQ = None,
    interval: IntervalQ = 1.0,
) -> EventSourceResponse:
    """SSE: `event:` is twin, presence, event, dead_letter (and the features' kinds) or
    positions (when asked for in `kinds`); `data:` is JSON.

    Filtered to the caller's tenant, and optionally to one vehicle or brand. A brand or a
    vehicle outside the caller's tenant is 404, like everywhere else in the API.
    """
    scope = who.scope(brand)
    # Open streams per token name, per app (the event loop's own state: no lock needed).
    state = request.app.state
    if not hasattr(state, "open_streams"):
        state.open_streams = {}
    _open: dict[str, int] = state.open_streams
    limit = p.settings.stream_max_per_token
    if _open.get(who.name, 0) >= limit:
        # Each stream holds a queue and a gzip compressor (~250 KB): bound what one token holds.
        raise RateLimited(
            f"this token has {limit} live streams open already; close one "
            "(or raise stream_max_per_token)",
            retry_after_s=15,
        )
    if vin is not None:
        # 404 for a VIN the caller cannot see; and the VIN as ingest spells it (normalised).
        vin = (await run_in_threadpool(p.registry.vehicle, who, vin)).vin
    owned = [who.vin_filter]  # an owner's VINs (None: not limited), refreshed below
    accepts = change_filter(scope, vin, lambda: owned[0])
    wanted = wanted_kinds(kinds)
    sub = p.hub.subscribe(
        accepts if wanted is None else lambda c: c.kind in wanted and accepts(c), wanted
    )
    # The same filter decides which vehicles' positions this subscriber gets.
    feed = p.positions if wanted is not None and POSITIONS in wanted else None
    owner_id = who.owner_id

    refreshed = [time.monotonic()]

    async def refresh_owned() -> None:
        """Re-read the owner's VINs when the last read is older than OWNED_REFRESH_S: a
        vehicle detached from the owner leaves the owner's stream."""
        if owner_id is not None and time.monotonic() - refreshed[0] > OWNED_REFRESH_S:
            owned[0] = await run_in_threadpool(p.registry.owned_vins, owner_id)
            refreshed[0] = time.monotonic()

    async def events() -> AsyncIterator[dict[str, str] | bytes]:
        # Opened here, where `finally` closes it: the feed folds only while a cursor follows.
        positions = feed.cursor(accepts, interval) if feed is not None else None
        _open[who.name] = _open.get(who.name, 0) + 1
        try:
            yield {"event": "ready", "data": "{}"}
            while not await request.is_disconnected():
                await refresh_owned()
                if positions is not None:
                    batch = positions.take(p.clock.now_ms())
                    if batch is not None:
                        yield {"event": POSITIONS, "data": batch}
                wait_s = 15.0 if positions is None else max(positions.wait_s(), 0.01)
                try:
                    change = await asyncio.wait_for(sub.queue.get(), timeout=wait_s)
                except TimeoutError:
                    continue
                waiting = [change, *take_queued(sub.queue, CHUNK_EVENTS - 1)]
                await refresh_owned()  # the wait may have been long: check against fresh VINs
                chunk = encode_changes(waiting, owned[0], sub)
                if chunk:
                    yield chunk
                if waiting[-1] is None:
                    break
        finally:
            p.hub.unsubscribe(sub)
            if positions is not None:
                positions.close()
            left = _open.get(who.name, 1) - 1
            if left > 0:
                _open[who.name] = left
            else:
                _open.pop(who.name, None)

    return GzipEventSourceResponse(events(), ping=15, compress=accepts_gzip(request))
