"""`autocloud sim`: a simulated fleet on OpenStreetMap roads, provisioned through the API."""

import json
import threading
import time
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit

import typer
from rich.live import Live
from rich.table import Table

from autocloud.domain.command_keyset import KeyEntry, key_entries
from autocloud.domain.gateway import MAX_GRANTS_PER_CALL
from autocloud.domain.timeparse import parse_span_ms
from autocloud.entrypoints.cli.client import Api, CliError
from autocloud.entrypoints.cli.render import console
from autocloud.sim.fleet import Fleet, FleetConfig, FleetStats, Provisioner
from autocloud.sim.load import LoadFleet
from autocloud.sim.places import Places
from autocloud.sim.roads import Router, build_graph
from autocloud.sim.town import generate_town


class ApiProvisioner:
    """Registers brands and vehicles through the operator API (re-keys existing vehicles)."""

    def __init__(self, api: Api) -> None:
        self._api = api
        self.mqtt_url: str | None = None

    def brand(self, brand_id: str, name: str) -> None:
        try:
            self._api.post("/v1/brands", {"id": brand_id, "name": name})
        except CliError as exc:
            if not str(exc).startswith("409"):
                raise

    def vehicle(self, vin: str, brand: str, model: str) -> str:
        try:
            done = self._api.post("/v1/vehicles", {"vin": vin, "brand": brand, "model": model})
        except CliError as exc:
            if not str(exc).startswith("409"):
                raise
            done = self._api.post(f"/v1/vehicles/{vin}/credential", {})
        self.mqtt_url = done["credential"]["mqtt_url"]
        secret: str = done["credential"]["password"]
        return secret

    def command_keys(self, vin: str) -> list[KeyEntry]:
        """The keys the vehicle is to trust for signed commands, with their roles."""
        return key_entries(self._api.get(f"/v1/vehicles/{vin}/keys"))


class ApiGatewayProvisioner:
    """Creates fleet gateways through the API (re-creating one that exists, for a fresh
    secret) and grants their VINs, 10,000 per call."""

    def __init__(self, api: Api) -> None:
        self._api = api
        self._ids: dict[str, int] = {}

    def gateway(self, brand: str, name: str) -> tuple[str, str]:
        for g in self._api.get("/v1/gateways", brand=brand)["items"]:
            if g["name"] == name:
                self._api.request("DELETE", f"/v1/gateways/{g['id']}")
        done = self._api.post("/v1/gateways", {"brand": brand, "name": name})
        login: str = done["credential"]["username"]
        secret: str = done["credential"]["password"]
        self._ids[login] = int(done["gateway"]["id"])
        return login, secret

    def grant(self, login: str, vins: list[str]) -> None:
        for start in range(0, len(vins), MAX_GRANTS_PER_CALL):
            chunk = vins[start : start + MAX_GRANTS_PER_CALL]
            self._api.post(f"/v1/gateways/{self._ids[login]}/grant", {"vins": chunk})


def prepare_map(map_path: Path | None, data_dir: Path, seed: int) -> tuple[Router, Places, Path]:
    """The routable graph and destinations of the map (a generated town by default)."""
    if map_path is None:
        map_path = data_dir / "town.osm"
        if not map_path.exists():
            generate_town(map_path, seed=seed)
    if not map_path.exists():
        raise CliError(f"map {map_path} does not exist; give an .osm.pbf or .osm file")
    with console.status(f"building the road graph of {map_path.name} (cached after the first run)"):
        graph = build_graph(map_path, data_dir / "osrm")
    return Router(graph), Places(map_path), map_path


def summary(stats: FleetStats, vehicles: int, dead: dict[str, int], started: float) -> Table:
    rate = stats.acked / max(0.001, time.monotonic() - started)
    when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(stats.sim_ms / 1000))
    table = Table(title=f"Simulated fleet — {when}", title_justify="left", show_header=False)
    for label, value in (
        ("vehicles online", f"{stats.connected} of {vehicles}"),
        ("moving / charging", f"{stats.moving} / {stats.charging}"),
        ("in a tunnel (offline)", str(stats.offline)),
        ("messages sent / acknowledged", f"{stats.sent} / {stats.acked}  ({rate:.0f}/s)"),
        ("bad messages injected", str(sum(stats.bad_sent.values()))),
        ("dead letters (platform)", ", ".join(f"{k} {v}" for k, v in sorted(dead.items())) or "0"),
    ):
        table.add_row(label, value)
    return table


def drive_fleet(fleet: Fleet, stop: threading.Event, dead_letters: Any = None) -> FleetStats:
    """Run `fleet` with a live summary until its duration ends or `stop` is set."""
    started = time.monotonic()
    dead: dict[str, int] = {}
    last_poll = 0.0
    with Live(console=console, refresh_per_second=2) as live:

        def on_tick(stats: FleetStats) -> None:
            nonlocal last_poll, dead
            now = time.monotonic()
            if dead_letters is not None and now - last_poll > 5:
                last_poll = now
                dead = dead_letters()
            live.update(summary(stats, len(fleet.vehicles), dead, started))

        return fleet.run(should_stop=stop.is_set, on_tick=on_tick)


def sim(
    map_path: Annotated[
        Path | None,
        typer.Option("--map", help="OSM extract (.osm.pbf/.osm); default: a generated town"),
    ] = None,
    vehicles: Annotated[int, typer.Option(min=1)] = 200,
    seed: Annotated[int, typer.Option()] = 7,
    broker: Annotated[
        str | None, typer.Option(help="mqtt://host:port; default: what the API says")
    ] = None,
    duration: Annotated[
        str | None, typer.Option(help="simulated time to run, e.g. 1h; default: until Ctrl-C")
    ] = None,
    speedup: Annotated[
        float, typer.Option(min=0, help="1 = real time; 0 = as fast as acknowledged")
    ] = 1.0,
    bad_input_rate: Annotated[
        float, typer.Option(min=0, max=1, help="share of messages corrupted")
    ] = 0.0,
    offline_rate: Annotated[float, typer.Option(min=0, help="tunnels per vehicle per hour")] = 0.5,
    batch_samples: Annotated[
        int, typer.Option(min=1, max=60, help="samples per telemetry message")
    ] = 1,
    ground_truth: Annotated[
        Path | None, typer.Option(help="write hidden degradation (JSON) here at the end")
    ] = None,
    data_dir: Annotated[
        Path, typer.Option(help="where the town and road graphs are cached")
    ] = Path("var"),
    mode: Annotated[
        str,
        typer.Option(
            help="realistic: one MQTT login and connection per car; load: cars publish "
            "through a few fleet-gateway connections"
        ),
    ] = "realistic",
    gateways: Annotated[
        int, typer.Option(min=1, help="load mode: gateway connections (at least one per brand)")
    ] = 3,
) -> None:
    """Drive a simulated fleet: each car provisioned through the API, with its own MQTT login
    (realistic mode), or published through fleet gateways (load mode)."""
    if mode not in ("realistic", "load"):
        raise CliError(f"--mode must be realistic or load, not {mode!r}")
    if speedup != 1.0 and duration is None:
        raise CliError("--speedup other than 1 needs --duration (the run is back-dated to end now)")
    router, places, used = prepare_map(map_path, data_dir, seed)
    api = Api()
    provisioner = ApiProvisioner(api)
    config = FleetConfig(
        vehicles=vehicles,
        seed=seed,
        duration_s=parse_span_ms(duration) / 1000 if duration else None,
        speedup=speedup,
        bad_input_rate=bad_input_rate,
        offline_rate_per_h=offline_rate,
        batch_samples=batch_samples,
    )
    fleet = (
        LoadFleet(
            config,
            router,
            places,
            provisioner,
            ApiGatewayProvisioner(api),
            gateway_connections=gateways,
        )
        if mode == "load"
        else Fleet(config, router, places, provisioner)
    )
    with console.status(f"provisioning {vehicles} vehicles through {api.base_url}"):
        fleet.provision()
    url = urlsplit(broker or provisioner.mqtt_url or "mqtt://127.0.0.1:1883")
    fleet.connect(url.hostname or "127.0.0.1", url.port or 1883)
    how = f" through {len(fleet.connections)} gateways" if mode == "load" else ""
    console.print(f"{vehicles} vehicles on {used.name}, connected to {url.geturl()}{how}")
    stop = threading.Event()
    try:
        stats = drive_fleet(fleet, stop, lambda: api.get("/v1/dead-letters/summary"))
    except KeyboardInterrupt:
        stop.set()
        stats = fleet.stats
    finally:
        fleet.close()
    console.print(f"done: {stats.ticks} s simulated, {stats.acked} messages acknowledged")
    if ground_truth is not None:
        ground_truth.write_text(json.dumps(fleet.ground_truth(), indent=1))
        console.print(f"ground truth written to {ground_truth}")


__all__ = [
    "ApiGatewayProvisioner",
    "ApiProvisioner",
    "Provisioner",
    "drive_fleet",
    "prepare_map",
    "sim",
]
