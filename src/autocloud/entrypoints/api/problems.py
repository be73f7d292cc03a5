"""RFC 9457 problem details for every error the API returns."""

from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from autocloud.domain.errors import (
    AutocloudError,
    ConfigurationError,
    Conflict,
    Forbidden,
    InvalidInput,
    NotFound,
    RateLimited,
    StoreUnavailable,
    Unauthorized,
)

PROBLEM_JSON = "application/problem+json"
BASE = "https://autocloud.dev/problems/"

# Error class -> (HTTP status, problem type slug, title); most specific first.
_TABLE: list[tuple[type[AutocloudError], int, str, str]] = [
    (InvalidInput, 422, "invalid-input", "Invalid input"),
    (NotFound, 404, "not-found", "Not found"),
    (Conflict, 409, "conflict", "Conflict"),
    (Unauthorized, 401, "unauthorized", "Unauthorized"),
    (Forbidden, 403, "forbidden", "Forbidden"),
    (RateLimited, 429, "rate-limited", "Too many requests"),
    (StoreUnavailable, 503, "unavailable", "Service unavailable"),
    (ConfigurationError, 500, "configuration", "Server misconfigured"),
]


def problem(
    status: int,
    slug: str,
    title: str,
    detail: str,
    *,
    headers: Mapping[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    body = {"type": BASE + slug, "title": title, "status": status, "detail": detail, **extra}
    merged = dict(headers or {})
    if status == 401:
        merged.setdefault("WWW-Authenticate", "Bearer")
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=merged or None)


def install(app: FastAPI) -> None:
    @app.exception_handler(AutocloudError)
    async def _ours(request: Request, exc: AutocloudError) -> JSONResponse:
        for cls, status, slug, title in _TABLE:
            if isinstance(exc, cls):
                # Errors may add machine-readable fields (a refusal's reason, a retry delay).
                extra = getattr(exc, "problem_fields", {})
                return problem(status, slug, title, str(exc), **extra)
        return problem(500, "internal", "Internal error", str(exc))

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [{"loc": list(e.get("loc", ())), "msg": e.get("msg", "")} for e in exc.errors()]
        detail = "; ".join(f"{'.'.join(str(x) for x in e['loc'])}: {e['msg']}" for e in errors)
        return problem(422, "invalid-input", "Invalid input", detail, errors=errors)

    @app.exception_handler(HTTPException)
    async def _http(request: Request, exc: HTTPException) -> JSONResponse:
        # Keep the exception's headers: a 405 must say which methods are allowed (Allow).
        return problem(
            exc.status_code, "http", str(exc.detail), str(exc.detail), headers=exc.headers
        )

    @app.exception_handler(ValueError)
    async def _value(request: Request, exc: ValueError) -> JSONResponse:
        return problem(422, "invalid-input", "Invalid input", str(exc))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        # A bug, not a user error: answer in problem+json too, but reveal nothing internal
        # (the traceback goes to the server log).
        return problem(
            500, "internal", "Internal error", "an unexpected error occurred; see the server log"
        )
