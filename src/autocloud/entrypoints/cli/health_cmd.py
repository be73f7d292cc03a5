"""`autocloud health [VIN]`: a vehicle's active DTCs, or the fleet's health at a glance."""

import time
from typing import Annotated, Any

import typer

from autocloud.entrypoints.cli.client import Api
from autocloud.entrypoints.cli.render import age, console, table, when

_COLOURS = {"critical": "bold red", "warning": "yellow", "info": "cyan"}


def _level(name: str | None) -> str:
    if name is None:
        return "[green]healthy[/]"
    return f"[{_COLOURS.get(name, 'white')}]{name}[/]"


def health(
    vin: Annotated[str | None, typer.Argument(help="a vehicle; omit for the whole fleet")] = None,
    brand: Annotated[str | None, typer.Option(help="fleet view: one brand")] = None,
) -> None:
    """Active trouble codes: decoded, described, graded by severity (docs/diagnostics.md)."""
    api = Api()
    if vin is not None:
        _vehicle(api.get(f"/v1/vehicles/{vin}/health"))
    else:
        _fleet(api.get("/v1/fleet/health", brand=brand))


def _vehicle(h: dict[str, Any]) -> None:
    now = int(time.time() * 1000)
    since = f" since {when(h['since_ms'])}" if h["since_ms"] else ""
    console.print(f"[bold]{h['vin']}[/]  {h['brand']} {h['model']}  {_level(h['worst'])}{since}")
    rows = [
        (
            _level(c["severity"]),
            c["code"],
            c["description"] or "-",
            f"{c['system']}, {c['subsystem'] or c['defined_by']}",
            age(c["since_ms"], now),
            c["source"],
        )
        for c in h["active"]
    ]
    if rows:
        console.print(
            table(
                "Active codes", ["severity", "code", "description", "system", "age", "from"], rows
            )
        )
    frames = [(c["code"], c["freeze_frame"]) for c in h["active"] if c["freeze_frame"]]
    for code, frame in frames:
        console.print(table(f"Freeze frame {code}", ["signal", "value"], sorted(frame.items())))
    if h["recent"]:
        recent = [
            (when(t["ts"]), t["code"], "raised" if t["raised"] else "cleared", t["source"])
            for t in h["recent"]
        ]
        console.print(table("Recent", ["time", "code", "", "from"], recent))


def _fleet(f: dict[str, Any]) -> None:
    console.print(f"[bold]{f['vehicles_with_codes']}[/] vehicles with active codes")
    levels = list(f["codes_by_severity"])
    console.print(
        table(
            "By severity",
            ["severity", "codes", "vehicles (worst)"],
            [(_level(s), f["codes_by_severity"][s], f["vehicles_by_worst"][s]) for s in levels],
        )
    )
    by_code = [
        (_level(c["severity"]), c["code"], c["description"] or "-", c["vehicles"])
        for c in f["by_code"][:20]
    ]
    console.print(table("By code", ["severity", "code", "description", "vehicles"], by_code))
    by_model = [(m["model"] or "-", m["vehicles"], m["critical"]) for m in f["by_model"]]
    console.print(table("By model", ["model", "vehicles", "critical"], by_model))
    if f["critical"]:
        rows = [
            (v["vin"], v["brand"], v["model"], ", ".join(v["codes"]), when(v["since_ms"]))
            for v in f["critical"]
        ]
        console.print(table("Critical", ["VIN", "brand", "model", "codes", "since"], rows))


__all__ = ["health"]
