"""Request dependencies: the wired platform and the authenticated caller.

FastAPI runs a sync dependency on a worker thread (a hop through the event loop and the
interpreter lock, per dependency and request), an async one on the loop. `platform` only
reads `app.state`, so it is async; `principal` may read the database (a token not cached,
an owner's VINs), so it stays sync.
"""

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from autocloud.bootstrap import Platform
from autocloud.domain.access import Principal
from autocloud.domain.errors import Unauthorized

_bearer = HTTPBearer(auto_error=False, description="An Autocloud API token (ac_…).")


def platform_of(request: Request) -> Platform:
    """The platform the app was built around (for code that runs off the event loop)."""
    found: Platform = request.app.state.platform
    return found


async def platform(request: Request) -> Platform:
    return platform_of(request)


def principal(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    if credentials is None:
        # Browsers' EventSource cannot set headers: the live stream also takes ?access_token=.
        token = (
            request.query_params.get("access_token")
            if request.url.path.endswith("/stream")
            else None
        )
        if not token:
            raise Unauthorized(
                "send 'Authorization: Bearer <token>'; create one with autocloud tokens create"
            )
    else:
        token = credentials.credentials
    who = platform_of(request).registry.authenticate(token)
    # An owner's token may call only the routes open to owners (domain/access.OWNER_ROUTES).
    route = request.scope.get("route")
    who.check_route(request.method, getattr(route, "path", request.url.path))
    return who


Who = Annotated[Principal, Depends(principal)]
Plat = Annotated[Platform, Depends(platform)]
Limit = 100
