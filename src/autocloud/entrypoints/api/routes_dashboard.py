"""The operator dashboard: its built single-page app and the base map it draws.

The page and its assets are public (they hold no data; the operator signs in with a token
in the page). The map data requires a valid token of any tenant: it is the OSM extract the
fleet drives on, the same for every brand, so it lives outside /v1 (not tenant data).
The app is built from `web/` by `make` (esbuild) into `web/dist`; until it is built,
`/dashboard/` says how to build it instead of failing obscurely.
"""

import gzip
import mimetypes
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse
from starlette.concurrency import run_in_threadpool

from autocloud.domain.errors import NotFound
from autocloud.entrypoints.api.deps import Plat, Who
from autocloud.entrypoints.api.schemas_dashboard import PulseOut, PulsePointOut
from autocloud.entrypoints.api.sse_gzip import accepts_gzip

router = APIRouter()
_HIDDEN: dict[str, Any] = {"include_in_schema": False}
DIST = Path(__file__).resolve().parents[4] / "web" / "dist"
_NOT_BUILT = """<!doctype html><html lang="en"><head><meta charset="utf-8">
<title>Autocloud dashboard not built</title></head><body>
<h1>The dashboard is not built</h1>
<p>Run <code>make web</code> (or <code>make demo</code>) in the Autocloud checkout: it installs
the front-end packages with <code>npm ci</code> and builds <code>web/dist</code>.</p>
</body></html>"""


def dist_dir() -> Path:
    """Where the built dashboard lives (a function, so tests can point it elsewhere)."""
    return DIST


@router.get("/", **_HIDDEN)
def root() -> RedirectResponse:
    return RedirectResponse("/dashboard/")


@router.get("/dashboard", **_HIDDEN)
def dashboard_slash() -> RedirectResponse:
    return RedirectResponse("/dashboard/")


@router.get("/dashboard/", response_model=None, **_HIDDEN)
def dashboard_index() -> Response:
    index = dist_dir() / "index.html"
    if not index.is_file():
        return HTMLResponse(_NOT_BUILT, status_code=503)
    return FileResponse(index, headers={"Cache-Control": "no-cache"})


@router.get("/dashboard/assets/{name:path}", **_HIDDEN)
def dashboard_asset(name: str) -> FileResponse:
    """A built asset; names outside the build folder are not found (no path traversal)."""
    root_dir = (dist_dir() / "assets").resolve()
    path = (root_dir / name).resolve()
    if not path.is_relative_to(root_dir) or not path.is_file():
        raise NotFound(f"no dashboard asset {name!r}")
    media_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    return FileResponse(path, media_type=media_type, headers={"Cache-Control": "no-cache"})


@router.get("/dashboard/map/info", **_HIDDEN)
def map_info(who: Who, p: Plat) -> dict[str, Any]:
    """The base map's name and layers (404 with the reason when no map is configured)."""
    if p.mapdata is None:
        raise NotFound("this platform serves no base map")
    return p.mapdata.describe()


@router.get("/dashboard/map/roads.geojson", response_model=None, **_HIDDEN)
async def map_roads(request: Request, who: Who, p: Plat) -> Response:
    """Roads of the configured OSM file as GeoJSON (gzip), cached in data_dir/map."""
    if p.mapdata is None:
        raise NotFound("this platform serves no base map")
    layer = await run_in_threadpool(p.mapdata.roads)
    headers = {"ETag": layer.etag, "Cache-Control": "private, no-cache", "Vary": "Authorization"}
    if request.headers.get("if-none-match") == layer.etag:
        return Response(status_code=304, headers=headers)
    return Response(
        layer.gzip,
        media_type="application/geo+json",
        headers={**headers, "Content-Encoding": "gzip"},
    )


@router.get(
    "/v1/fleet/positions",
    tags=["twin"],
    response_class=Response,
    responses={200: {"content": {"application/json": {}}}},
)
async def fleet_positions(
    request: Request, who: Who, p: Plat, brand: str | None = None
) -> Response:
    """Every vehicle the caller may see, with its last position and state, in one compact
    document for the fleet map: `{"t": server ms, "n": count, "vin": [...], "brand": [...],
    "model": [...], "lat": [...], "lon": [...], "heading": [...], "speed": [...],
    "soc": [...], "fuel": [...], "online": [1|0], "charging": [1|0|null]}` (one list per
    field, null when never reported; coordinates rounded to 5 decimals). Gzipped when the
    client accepts it. The live stream's `positions` kind sends the changes that follow."""
    if p.positions is None:
        raise NotFound("this platform keeps no positions")
    snapshot = await run_in_threadpool(p.positions.snapshot, who, brand)
    body = snapshot.body()
    headers = {"Cache-Control": "no-store", "Vary": "Accept-Encoding"}
    if len(body) > 1024 and accepts_gzip(request):  # "gzip;q=0" refuses it
        body = await run_in_threadpool(gzip.compress, body, 5)
        headers["Content-Encoding"] = "gzip"
    return Response(body, media_type="application/json", headers=headers)


@router.get("/v1/fleet/pulse", tags=["twin"])
def fleet_pulse(who: Who, p: Plat, brand: str | None = None) -> PulseOut:
    """Vehicles registered and online, and vehicle messages per second, sampled every
    `interval_ms` since `since_ms` (the platform's start), within the caller's tenant."""
    scope = who.scope(brand)
    if p.pulse is None:
        raise NotFound("this platform keeps no fleet pulse")
    points = [
        PulsePointOut(
            ts=x.ts, vehicles=x.vehicles, online=x.online, messages_per_s=x.messages_per_s
        )
        for x in p.pulse.series(scope)
    ]
    return PulseOut(interval_ms=p.pulse.interval_ms, since_ms=p.pulse.since_ms, samples=points)
