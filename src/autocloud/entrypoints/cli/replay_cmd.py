"""`autocloud replay`: drive one vehicle through a real OBD-II recording.

The recording is published as the vehicle itself would: with its own MQTT login. Without
``--secret`` the command gets a login through the operator API, registering the vehicle when
``--brand`` is given and it is new, otherwise rotating the existing vehicle's credential (which
cuts off whatever used the old one). See ``docs/replay.md`` for the PID to VSS mapping.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from autocloud.domain.vin import validate_vin
from autocloud.entrypoints.cli.client import Api, CliError
from autocloud.entrypoints.cli.render import console, table, when
from autocloud.sim.replay import DEFAULT_BROKER, MAX_BATCH, Recording, ReplayStats, read_recording
from autocloud.sim.replay import replay as run


def _credential(vin: str, brand: str | None, model: str) -> tuple[str, str]:
    """(secret, MQTT URL) for ``vin`` from the API: register it with ``brand``, or rotate."""
    api = Api()
    if brand is not None:
        try:
            done = api.post("/v1/vehicles", {"vin": vin, "brand": brand, "model": model})
            console.print(f"registered {vin} in brand {brand}")
        except CliError as first:  # most likely registered already: rotate instead
            try:
                done = api.post(f"/v1/vehicles/{vin}/credential", {})
            except CliError:
                raise first from None
            console.print(f"{vin} exists: rotated its MQTT credential")
    else:
        try:
            done = api.post(f"/v1/vehicles/{vin}/credential", {})
        except CliError as exc:
            raise CliError(
                f"{exc} (to register a new vehicle pass --brand; to use its current "
                "credential pass --secret)"
            ) from None
        console.print(f"rotated the MQTT credential of {vin}")
    credential = done["credential"]
    return str(credential["password"]), str(credential["mqtt_url"])


def _summary(recording: Recording, stats: ReplayStats, vin: str, seconds: float) -> None:
    console.print(
        f"[bold green]replayed[/] {recording.path.name} as [bold]{vin}[/] in {seconds:.1f} s: "
        f"{stats.rows} rows, {stats.messages} messages, {stats.sent} signal values sent "
        f"(session {stats.sid}, {when(stats.first_ts)} → {when(stats.last_ts)})"
    )
    if recording.truncated:
        console.print("[yellow]the file's last line was cut off mid-write and was dropped[/]")
    if stats.empty_rows:
        console.print(f"[yellow]{stats.empty_rows} rows had no valid value and were not sent[/]")
    if stats.skipped_by_column:
        rows = [
            (column, count, stats.first_refusal[column])
            for column, count in stats.skipped_by_column.most_common()
        ]
        console.print(table("Values refused by the catalog", ["column", "count", "first"], rows))
    minutes = int((time.time() * 1000 - (stats.first_ts or 0)) // 60_000) + 1
    console.print(f"  try:  autocloud twin {vin}")
    console.print(f"        autocloud history {vin} Vehicle.Speed --since {minutes}m")


def replay(
    csv: Annotated[Path, typer.Argument(help="OBD-II recording: carOBD CSV, one row a second")],
    vin: Annotated[str, typer.Option(help="17-character VIN the recording is replayed as")],
    secret: Annotated[
        str | None,
        typer.Option(
            help="the vehicle's MQTT password; omit it to get one through the API "
            "(registers the vehicle with --brand, else rotates its credential)",
            envvar="AUTOCLOUD_VEHICLE_SECRET",
        ),
    ] = None,
    broker: Annotated[
        str | None,
        typer.Option(
            help="mqtt://host:port; default: the URL the API gives with the credential, "
            "else mqtt://127.0.0.1:1883"
        ),
    ] = None,
    speedup: Annotated[
        float, typer.Option(min=0, help="multiple of real time; 0 = as fast as possible")
    ] = 20.0,
    batch: Annotated[
        int,
        typer.Option(
            min=1, max=MAX_BATCH, help="rows per message (more than 1: the 'samples' form)"
        ),
    ] = 1,
    brand: Annotated[
        str | None, typer.Option(help="brand to register the vehicle in if it is new")
    ] = None,
    model: Annotated[str, typer.Option(help="model name when registering")] = "",
) -> None:
    """Replay a real 1 Hz OBD-II recording as one vehicle; its twin and history follow."""
    vin = validate_vin(vin)
    recording = read_recording(csv)  # parse before touching the API or the broker
    url = broker
    if secret is None:
        secret, given_url = _credential(vin, brand, model)
        url = url or given_url
    pace = "as fast as possible" if speedup == 0 else f"at {speedup:g}x real time"
    console.print(f"replaying {len(recording)} rows of {csv.name} as {vin} {pace}")
    began = time.monotonic()
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=True,
    ) as bar:
        task = bar.add_task(csv.name, total=len(recording))
        stats = run(
            recording,
            vin=vin,
            secret=secret,
            broker=url or DEFAULT_BROKER,
            speedup=speedup,
            batch=batch,
            on_progress=lambda done, _total: bar.update(task, completed=done),
        )
    _summary(recording, stats, vin, time.monotonic() - began)
