"""`autocloud twin|fleet|history|dead-letters`: reading the fleet through the API."""

import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from autocloud.entrypoints.cli.client import Api, CliError
from autocloud.entrypoints.cli.render import age, console, sparkline, table, value, when


def twin(vin: str) -> None:
    """Show a vehicle's digital twin: every signal's last value, its unit and its age."""
    api = Api()
    t = api.get(f"/v1/vehicles/{vin}/twin")
    units = {s["path"]: s["unit"] or "" for s in api.get("/v1/signals")["items"]}
    now = int(time.time() * 1000)
    v = t["vehicle"]
    state = "[green]online[/]" if t["online"] else "[red]offline[/]"
    console.print(
        f"[bold]{v['vin']}[/]  {v['brand']} {v['model']}  "
        f"{v['manufacturer'] or ''} {v['model_year'] or ''}"
        f"  {state} since {when(t['online_since_ms'])}"
    )
    rows = [
        (path, value(s["value"]), units.get(path, ""), age(s["ts"], now))
        for path, s in t["reported"].items()
    ]
    console.print(table("Reported", ["signal", "value", "unit", "age"], rows))
    if t["desired"]:
        pending = set(t["pending"])
        rows = [
            (p, value(d["value"]), "pending" if p in pending else "in sync", d["set_by"])
            for p, d in t["desired"].items()
        ]
        console.print(table("Desired", ["signal", "value", "state", "set by"], rows))


def fleet(
    brand: Annotated[str | None, typer.Option()] = None,
    model: Annotated[str | None, typer.Option()] = None,
    online: Annotated[bool | None, typer.Option("--online/--offline")] = None,
    where: Annotated[
        list[str] | None,
        typer.Option(help="e.g. 'Vehicle.Powertrain.TractionBattery.StateOfCharge.Current<20'"),
    ] = None,
) -> None:
    """The fleet at a glance, filtered by brand, model, connection or a signal condition."""
    items = list(
        Api().pages("/v1/fleet", brand=brand, model=model, online=online, where=where, limit=1000)
    )
    soc = "Vehicle.Powertrain.TractionBattery.StateOfCharge.Current"
    rows = [
        (
            e["vin"],
            e["brand"],
            e["model"],
            "●" if e["online"] else "○",
            value(e["signals"].get("Vehicle.Speed", "")),
            value(e["signals"].get(soc, "")),
            f"{value(e['signals'].get('Vehicle.CurrentLocation.Latitude', ''))}, "
            f"{value(e['signals'].get('Vehicle.CurrentLocation.Longitude', ''))}",
        )
        for e in items
    ]
    console.print(
        table(
            f"Fleet ({len(rows)})",
            ["VIN", "brand", "model", "on", "km/h", "SoC %", "position"],
            rows,
        )
    )


def history(
    vin: str,
    signals: Annotated[list[str], typer.Argument(help="VSS signal paths")],
    since: Annotated[str, typer.Option(help="1h, 7d, ISO 8601 or epoch ms")] = "1h",
    until: Annotated[str, typer.Option()] = "now",
    bucket: Annotated[str | None, typer.Option(help="downsample, e.g. 1m")] = None,
    csv: Annotated[Path | None, typer.Option(help="write CSV to this file")] = None,
    raw: Annotated[bool, typer.Option(help="list every point instead of a plot")] = False,
) -> None:
    """A signal's history: a plot per signal, a table of buckets, or a CSV export."""
    api = Api()
    params = {"signals": signals, "since": since, "until": until, "bucket": bucket}
    if csv is not None:
        _export(api, vin, params, csv)
        return
    if bucket is not None:
        buckets = api.get(f"/v1/vehicles/{vin}/history", **params)["buckets"]
        for path in signals:
            mine = [b for b in buckets if b["path"] == path]
            console.print(f"[bold]{path}[/]  {sparkline([b['avg'] for b in mine])}")
            rows = [
                (
                    when(b["start"]),
                    b["count"],
                    value(b["min"]),
                    value(b["avg"]),
                    value(b["max"]),
                    value(b["last"]),
                )
                for b in mine
            ]
            console.print(table("", ["bucket", "n", "min", "avg", "max", "last"], rows))
        return
    points = _all_points(api, vin, params)
    for path in signals:
        mine = [p for p in points if p["path"] == path]
        numbers = [float(p["value"]) for p in mine if isinstance(p["value"], int | float)]
        if not mine:
            console.print(f"[bold]{path}[/]: no data in range")
        elif numbers and not raw:
            console.print(
                f"[bold]{path}[/]  {len(mine)} points, "
                f"{when(mine[0]['ts'])} → {when(mine[-1]['ts'])}\n  {sparkline(numbers)}  "
                f"min {min(numbers):.4g}  max {max(numbers):.4g}  last {numbers[-1]:.4g}"
            )
        else:
            console.print(
                table(path, ["time", "value"], [(when(p["ts"]), value(p["value"])) for p in mine])
            )


def _all_points(api: Api, vin: str, params: dict[str, Any]) -> list[dict[str, object]]:
    points: list[dict[str, object]] = []
    cursor = None
    with Progress(
        TextColumn("fetching history"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        transient=True,
    ) as bar:
        task = bar.add_task("history", total=None)
        while True:
            page = api.get(f"/v1/vehicles/{vin}/history", cursor=cursor, **params)
            points.extend(page["points"])
            bar.update(task, completed=len(points))
            cursor = page.get("next")
            if not cursor:
                return points


def _export(api: Api, vin: str, params: dict[str, Any], target: Path) -> None:
    cursor = None
    rows = 0
    with (
        target.open("w") as out,
        Progress(
            TextColumn("exporting"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn()
        ) as bar,
    ):
        task = bar.add_task("export", total=None)
        while True:
            response = api.request(
                "GET",
                f"/v1/vehicles/{vin}/history",
                params={
                    **{k: v for k, v in params.items() if v is not None},
                    "format": "csv",
                    "cursor": cursor,
                },
            )
            lines = response.text.splitlines(keepends=True)
            out.writelines(lines if rows == 0 else lines[1:])
            rows += max(0, len(lines) - 1)
            bar.update(task, completed=rows)
            link = response.headers.get("Link", "")
            if "cursor=" not in link:
                break
            cursor = link.split("cursor=", 1)[1].split(">", 1)[0]
    console.print(f"{rows} rows written to {target}")


def dead_letters(
    reason: Annotated[str | None, typer.Option()] = None,
    vin: Annotated[str | None, typer.Option()] = None,
    limit: Annotated[int, typer.Option()] = 20,
) -> None:
    """Refused vehicle messages: counts per reason, then the newest with their payloads."""
    api = Api()
    counts = api.get("/v1/dead-letters/summary")
    console.print(
        table(
            "Dead letters by reason",
            ["reason", "count"],
            sorted(counts.items(), key=lambda x: -x[1]),
        )
    )
    items = api.get("/v1/dead-letters", reason=reason, vin=vin, limit=limit)["items"]
    rows = [
        (when(d["received_ms"]), d["vin"] or "-", d["reason"], d["detail"][:80], d["payload"][:60])
        for d in items
    ]
    console.print(table("Newest", ["received", "VIN", "reason", "detail", "payload"], rows))


__all__ = ["CliError", "dead_letters", "fleet", "history", "twin"]
