"""The operator API: FastAPI app built around a wired Platform."""

from fastapi import FastAPI, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from autocloud import __version__
from autocloud.bootstrap import Platform
from autocloud.entrypoints.api import problems, routes_registry, routes_stream, routes_telemetry

DESCRIPTION = """Operator API of Autocloud: provision brands and vehicles, read digital twins,
the fleet and signal history, inspect dead letters, follow the live stream.

Authenticate with `Authorization: Bearer <token>`. Tokens have a role (viewer, operator,
admin) and a scope (one brand, or the whole group). Errors are RFC 9457 problem+json.
"""


def create_app(platform: Platform) -> FastAPI:
    app = FastAPI(title="Autocloud", version=__version__, description=DESCRIPTION)
    app.state.platform = platform
    problems.install(app)
    app.include_router(routes_registry.router)
    app.include_router(routes_telemetry.router)
    app.include_router(routes_stream.router)
    from autocloud.entrypoints.api import routes_commands  # remote commands (issue 4)

    app.include_router(routes_commands.router)
    from autocloud.entrypoints.api import routes_key_lists  # what cars confirmed of key lists

    app.include_router(routes_key_lists.router)
    from autocloud.entrypoints.api import routes_diag  # remote UDS sessions (issue 4)

    app.include_router(routes_diag.router)
    from autocloud.entrypoints.api import routes_webhooks  # signed webhooks (issue 4)

    app.include_router(routes_webhooks.router)
    from autocloud.entrypoints.api import routes_gateways  # fleet gateways (issue 3)

    app.include_router(routes_gateways.router)
    from autocloud.entrypoints.api import routes_dashboard  # the web UI and its base map

    app.include_router(routes_dashboard.router)
    from autocloud.entrypoints.api import routes_alerts, routes_health  # DTCs, alerts (issue 4)

    app.include_router(routes_health.router)
    app.include_router(routes_alerts.router)

    @app.get("/metrics", include_in_schema=False)
    def metrics() -> Response:
        return Response(generate_latest(platform.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    @app.get("/healthz", tags=["ops"], response_model=None)
    def health() -> dict[str, str] | Response:
        """200 while the platform works; 503 when its ingest worker has stopped."""
        ingest = platform.ingest
        if ingest.started and not ingest.alive:
            return problems.problem(
                503,
                "unavailable",
                "Ingest stopped",
                f"the ingest worker stopped because {ingest.durability_lost}"
                if ingest.durability_lost
                else "the ingest worker is not running; see the log",
            )
        return {"status": "ok", "ingest": "running" if ingest.alive else "not started"}

    return app
