"""`autocloud demo`: provision two brands and drive scripted vehicles on the embedded platform."""

import contextlib
import threading

from autocloud.bootstrap import SYSTEM, Platform
from autocloud.domain.errors import Conflict
from autocloud.domain.vin import check_digit
from autocloud.entrypoints.cli.render import console
from autocloud.sim.scripted import ScriptedVehicle, drive

BRANDS = (
    # brand id, name, WMI, model, electric
    ("volkswagen", "Volkswagen", "WVW", "ID.3", True),
    ("bmw", "BMW", "WBA", "320i", False),
)


def demo_vin(wmi: str, serial: int) -> str:
    """A valid VIN for the demo fleet: WMI, descriptor, check digit, 2024 ('R'), plant, serial."""
    body = f"{wmi}ZZZ1K0RM{serial:06d}"
    return body[:8] + check_digit(body) + body[9:]


def run_demo(platform: Platform, api: str, count: int) -> None:
    """Provision the demo fleet (idempotent) and drive it until the process ends."""
    host, port = platform.settings.mqtt_host_port
    vehicles: list[ScriptedVehicle] = []
    for brand_id, name, _wmi, _model, _ev in BRANDS:
        with contextlib.suppress(Conflict):  # a restarted demo finds its brands
            platform.registry.add_brand(SYSTEM, brand_id, name)
    for i in range(count):
        brand_id, _name, wmi, model, electric = BRANDS[i % len(BRANDS)]
        vin = demo_vin(wmi, i + 1)
        if platform.registry._registry.vehicle(vin) is None:
            done = platform.registry.add_vehicle(SYSTEM, vin, brand_id, model)
        else:
            done = platform.registry.rotate_secret(SYSTEM, vin)
        vehicles.append(
            ScriptedVehicle(
                vin, done.secret, electric, host, port, seed=i, bad_every=30 if i == 0 else 0
            )
        )
    first = vehicles[0]
    console.print(
        f"\n[bold]Demo fleet:[/] {count} scripted vehicles of {len(BRANDS)} brands, 1 Hz each"
    )
    console.print(f"  try:  autocloud twin {first.vin}")
    console.print(f"        autocloud history {first.vin} Vehicle.Speed --since 5m")
    console.print(
        f'        curl -H "Authorization: Bearer $(cat {platform.settings.data_dir}/admin-token)" '
        f"{api}/v1/fleet"
    )
    console.print(
        f"  one vehicle's own MQTT login:  mosquitto_pub -h {host} -p {port} "
        f"-u {first.vin} -P {first.secret} "
        f'-t vehicles/{first.vin}/telemetry -q 1 -m \'{{"v":1,"sid":"manual","seq":1,'
        f'"ts":\'$(date +%s%3N)\',"signals":{{"Vehicle.Speed":42.0}}}}\''
    )
    console.print("  Ctrl-C stops the platform.\n")
    drive(vehicles, threading.Event())
