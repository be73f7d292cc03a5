"""`autocloud demo`: the embedded platform with a simulated fleet driving a generated town."""

import contextlib
import threading
from pathlib import Path

from autocloud.bootstrap import SYSTEM, Platform
from autocloud.domain.command_keyset import KeyEntry
from autocloud.domain.errors import Conflict
from autocloud.entrypoints.cli.render import console
from autocloud.entrypoints.cli.sim_cmd import drive_fleet, prepare_map
from autocloud.sim.fleet import Fleet, FleetConfig


class InProcessProvisioner:
    """Registers the demo fleet directly with the platform it runs beside."""

    def __init__(self, platform: Platform) -> None:
        self._registry = platform.registry
        self._commands = platform.commands

    def brand(self, brand_id: str, name: str) -> None:
        with contextlib.suppress(Conflict):  # a restarted demo finds its brands
            self._registry.add_brand(SYSTEM, brand_id, name)

    def vehicle(self, vin: str, brand: str, model: str) -> str:
        try:
            return self._registry.add_vehicle(SYSTEM, vin, brand, model).secret
        except Conflict:
            return self._registry.rotate_secret(SYSTEM, vin).secret

    def command_keys(self, vin: str) -> list[KeyEntry]:
        """The keys the vehicle is to trust for signed commands, with their roles."""
        if self._commands is None:
            return []
        return [k.entry() for k in self._commands.keys(SYSTEM, vin)]


def run_demo(
    platform: Platform, api: str, count: int, map_path: Path | None, stop: threading.Event
) -> None:
    """Provision the demo fleet and drive it in real time until the process ends."""
    data_dir = platform.settings.data_dir
    router, places, used = prepare_map(map_path, data_dir, seed=7)
    fleet = Fleet(
        FleetConfig(vehicles=count, seed=7, bad_input_rate=0.002),
        router,
        places,
        InProcessProvisioner(platform),
    )
    fleet.provision()
    host, port = platform.settings.mqtt_host_port
    fleet.connect(host, port)
    first = fleet.vehicles[0].vin
    console.print(
        f"\n[bold]Demo fleet:[/] {count} simulated vehicles of 3 brands driving {used.name}"
    )
    console.print(f"  try:  autocloud twin {first}")
    console.print(f"        autocloud history {first} Vehicle.Speed --since 5m")
    console.print("        autocloud fleet --online")
    console.print(
        f'        curl -H "Authorization: Bearer $(cat {data_dir}/admin-token)" {api}/v1/fleet'
    )
    console.print(
        f"  dashboard:  [bold]{api}/dashboard/[/]  (sign in with the admin token in "
        f"{data_dir}/admin-token)"
    )
    console.print("  Ctrl-C stops the platform.\n")
    try:
        drive_fleet(fleet, stop, lambda: platform.telemetry.dead_letter_counts(SYSTEM))
    finally:
        fleet.close()
