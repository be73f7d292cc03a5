"""The `autocloud` command: run the platform, provision, and read the fleet."""

import logging
import signal
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Annotated, Any

import typer
import uvicorn

from autocloud.domain.access import Role
from autocloud.domain.errors import AutocloudError
from autocloud.entrypoints.cli import (
    alerts_cmd,
    commands_cmd,
    consumers_cmd,
    data_cmds,
    diag_cmd,
    gateways_cmd,
    health_cmd,
    keys_cmd,
    registry_cmds,
    replay_cmd,
    sim_cmd,
    webhooks_cmd,
)
from autocloud.entrypoints.cli.render import console, err
from autocloud.settings import Settings, load_settings

app = typer.Typer(
    help="Autocloud: an open automotive cloud.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(registry_cmds.brands, name="brands")
app.add_typer(registry_cmds.vehicles, name="vehicles")
app.add_typer(registry_cmds.owners, name="owners")
app.command("twin")(data_cmds.twin)
app.command("fleet")(data_cmds.fleet)
app.command("history")(data_cmds.history)
app.command("dead-letters")(data_cmds.dead_letters)
app.command("replay")(replay_cmd.replay)
app.add_typer(commands_cmd.command, name="command")  # remote commands (issue 4)
app.command("audit")(commands_cmd.audit)
app.command("keys")(keys_cmd.keys)  # command keys and the car's key-list confirmation
app.command("sim")(sim_cmd.sim)
app.add_typer(gateways_cmd.gateways, name="gateways")
app.command("diag")(diag_cmd.diag)  # remote UDS readouts (issue 4)
app.command("diag-show")(diag_cmd.diag_show)
app.add_typer(webhooks_cmd.webhooks, name="webhooks")
app.command("health")(health_cmd.health)  # active DTCs, vehicle and fleet health (issue 4)
app.add_typer(alerts_cmd.alerts, name="alerts")
app.add_typer(alerts_cmd.rules, name="alert-rules")
app.add_typer(consumers_cmd.consumers, name="consumers")  # retire a consumer's broker session
tokens = typer.Typer(help="API bearer tokens (run on the server).", no_args_is_help=True)
app.add_typer(tokens, name="tokens")
db = typer.Typer(help="Database schema.", no_args_is_help=True)
app.add_typer(db, name="db")
broker = typer.Typer(help="Vehicle broker helpers.", no_args_is_help=True)
app.add_typer(broker, name="broker")

ConfigOpt = Annotated[Path | None, typer.Option("--config", help="TOML settings file")]
BrokerOpt = Annotated[str | None, typer.Option(help="'embedded' or mqtt://host:port (Mosquitto)")]
DbOpt = Annotated[str | None, typer.Option(help="sqlite:///path or postgresql://user@host/db")]
DataOpt = Annotated[Path | None, typer.Option(help="data directory")]


def _settings(config: Path | None, **flags: object) -> Settings:
    return load_settings(config, **flags)


def serve(
    settings: Settings,
    *,
    on_ready: Callable[[Any, str], None] | None = None,
    stop: threading.Event | None = None,
) -> None:
    """Start the platform and the API; block until SIGINT/SIGTERM, then stop cleanly."""
    from autocloud.bootstrap import build, freeze_startup_heap
    from autocloud.entrypoints.api.app import create_app

    logging.basicConfig(
        level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    for noisy in ("amqtt", "transitions", "alembic"):  # their INFO is per connection
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLogger().level))
    from autocloud.entrypoints.api import logs

    logs.install()
    # The event loop and the link's reader give up the interpreter at every socket call and
    # then queue behind the ingest thread for up to a switch interval each time; this bounds
    # that wait (its effect on the bench's p99 was within the noise: BENCHMARKS.md).
    sys.setswitchinterval(settings.switch_interval_ms / 1000)
    platform = build(settings)
    new_token = platform.ensure_admin_token()
    platform.start()
    app = create_app(platform)
    freeze_startup_heap()
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            host=settings.api_host,
            port=settings.api_port,
            log_level="warning",
        )
    )
    api = f"http://{settings.api_host}:{settings.api_port}"
    console.print(
        f"[bold green]Autocloud is up[/] "
        f"({settings.broker_kind} broker, {platform.store.dialect.name})"
    )
    console.print(f"  API      {api}   docs {api}/docs   metrics {api}/metrics")
    console.print(f"  MQTT     {platform.mqtt_url}")
    if new_token:
        console.print(
            f"  admin token (also in {settings.data_dir}/admin-token): [bold]{new_token}[/]"
        )
    if on_ready is not None:
        threading.Thread(target=on_ready, args=(platform, api), daemon=True).start()
    try:
        server.run()
    finally:
        if stop is not None:
            stop.set()
        platform.stop()


@app.command()
def up(
    config: ConfigOpt = None,
    broker: BrokerOpt = None,
    db: DbOpt = None,
    data_dir: DataOpt = None,
    api_port: Annotated[int | None, typer.Option()] = None,
    mqtt_port: Annotated[int | None, typer.Option(help="embedded broker port")] = None,
    vss_path: Annotated[
        Path | None, typer.Option(help="VSS release JSON: accept all its leaves")
    ] = None,
    map_path: Annotated[
        Path | None, typer.Option("--map", help="OSM file the fleet drives: the dashboard's map")
    ] = None,
    dtc_catalog: Annotated[Path | None, typer.Option(help="DTC descriptions JSON")] = None,
) -> None:
    """Run the platform: broker edge, ingest, API. Embedded defaults need nothing installed."""
    settings = _settings(
        config,
        broker=broker,
        db=db,
        data_dir=data_dir,
        api_port=api_port,
        embedded_broker_port=mqtt_port,
        vss_path=vss_path,
        map_path=map_path,
        dtc_catalog_path=dtc_catalog,
    )
    serve(settings)


@app.command()
def demo(
    vehicles: Annotated[int, typer.Option(help="simulated vehicles")] = 200,
    map_path: Annotated[
        Path | None, typer.Option("--map", help="OSM extract; default: a generated town")
    ] = None,
    data_dir: DataOpt = None,
    api_port: Annotated[int | None, typer.Option()] = None,
    mqtt_port: Annotated[int | None, typer.Option()] = None,
    vss_path: Annotated[Path | None, typer.Option()] = None,
    dtc_catalog: Annotated[Path | None, typer.Option(help="DTC descriptions JSON")] = None,
) -> None:
    """Embedded platform plus a simulated fleet of three brands driving a town."""
    from autocloud.entrypoints.cli.demo import run_demo

    settings = _settings(
        None,
        data_dir=data_dir,
        api_port=api_port,
        embedded_broker_port=mqtt_port,
        vss_path=vss_path,
        dtc_catalog_path=dtc_catalog,
        log_level="warning",
    )
    # The dashboard draws the map the fleet drives: the given extract or the generated town.
    settings.map_path = map_path or settings.data_dir / "town.osm"
    stop = threading.Event()
    serve(
        settings,
        on_ready=lambda platform, api: run_demo(platform, api, vehicles, map_path, stop),
        stop=stop,
    )


@db.command("upgrade")
def db_upgrade(config: ConfigOpt = None, db: DbOpt = None, data_dir: DataOpt = None) -> None:
    """Apply schema migrations (the platform also does this at start)."""
    from autocloud.bootstrap import open_store

    settings = _settings(config, db=db, data_dir=data_dir)
    open_store(settings.db_url).close()
    console.print("schema is up to date")


@tokens.command("create")
def token_create(
    name: Annotated[str, typer.Option()],
    role: Annotated[str, typer.Option(help="viewer, operator or admin")] = "viewer",
    brand: Annotated[
        str | None, typer.Option(help="tenant scope; omit for the whole group")
    ] = None,
    owner: Annotated[
        int | None, typer.Option(help="an owner's token: commands that owner's vehicles only")
    ] = None,
    config: ConfigOpt = None,
    db: DbOpt = None,
    data_dir: DataOpt = None,
) -> None:
    """Issue an API token directly in the database (server-side bootstrap)."""
    from autocloud.bootstrap import open_store
    from autocloud.domain.clock import SystemClock
    from autocloud.services.registry import RegistryService

    settings = _settings(config, db=db, data_dir=data_dir)
    store = open_store(settings.db_url)
    try:
        service = RegistryService(store.registry, _NoBroker(), SystemClock())
        info, token = service.issue_token(name, Role.parse(role), brand, owner)
    finally:
        store.close()
    console.print(f"token {info.id} ({info.role}, {info.brand or 'whole group'}): [bold]{token}[/]")


class _NoBroker:
    def grant(self, vin: str, secret: str) -> None:
        raise AutocloudError("tokens create does not touch vehicles")

    def revoke(self, vin: str) -> None:
        raise AutocloudError("tokens create does not touch vehicles")


@broker.command("mosquitto-config")
def mosquitto_config(
    directory: Path,
    port: Annotated[int, typer.Option()] = 1883,
    admin_user: Annotated[str, typer.Option()] = "admin",
    admin_password: Annotated[str, typer.Option(prompt=True, hide_input=True)] = "",
) -> None:
    """Write a Mosquitto config with the dynamic-security plugin that Autocloud manages."""
    from autocloud.adapters.mosquitto import write_mosquitto_config

    conf = write_mosquitto_config(
        directory, port=port, admin_user=admin_user, admin_password=admin_password
    )
    console.print(f"wrote {conf}; start it with: mosquitto -c {conf}")
    console.print(
        f"then: AUTOCLOUD_BROKER_ADMIN_PASSWORD=… autocloud up --broker mqtt://127.0.0.1:{port}"
    )


def _sigterm(_signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def main() -> None:
    signal.signal(signal.SIGTERM, _sigterm)
    try:
        app()
    except (AutocloudError, ValueError) as exc:  # ValueError: e.g. an unknown role name
        err.print(f"[red]error:[/] {exc}")
        sys.exit(2)


if __name__ == "__main__":
    main()
