"""`autocloud command send|send-signed|list|show|catalog`, `autocloud audit`: commands via the API.

`send --wait` follows the lifecycle live: each step (queued, sent, delivered, and the end)
is printed as the platform records it, with its time since the command was queued.
"""

import json
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from autocloud.entrypoints.cli.client import Api, CliError
from autocloud.entrypoints.cli.render import console, table, when

command = typer.Typer(help="Remote commands to vehicles.", no_args_is_help=True)
FINAL = {"succeeded", "failed", "rejected", "expired"}
STEPS = (("queued", "queued_ms"), ("sent", "sent_ms"), ("delivered", "delivered_ms"))
STYLE = {"succeeded": "green", "failed": "red", "rejected": "red", "expired": "yellow"}


def parse_params(pairs: list[str]) -> dict[str, Any]:
    """`k=v` pairs; values are JSON when they parse (21.5, true), else strings."""
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key:
            raise CliError(f"--param {pair!r} must look like name=value")
        try:
            out[key] = json.loads(raw)
        except ValueError:
            out[key] = raw
    return out


def _steps(c: dict[str, Any], shown: set[str]) -> None:
    """Print the lifecycle steps of `c` not shown yet."""
    t = c["timings"]
    start = t["queued_ms"]
    steps = [(name, t[key]) for name, key in STEPS if t[key] is not None]
    if c["state"] in FINAL and t["finished_ms"] is not None:
        steps.append((c["state"], t["finished_ms"]))
    for name, at in steps:
        if name in shown:
            continue
        shown.add(name)
        style = STYLE.get(name, "cyan")
        extra = f"  {c['reason']}" if name in FINAL and c["reason"] else ""
        if name == "succeeded" and c["result"]:
            extra = f"  {json.dumps(c['result'])}"
        console.print(f"  [{style}]{name:<10}[/] +{at - start:>6} ms{extra}")


def follow(api: Api, command_id: str, timeout_s: float) -> dict[str, Any]:
    """Poll the command until it finishes (or `timeout_s`), printing each new step."""
    shown: set[str] = set()
    deadline = time.monotonic() + timeout_s
    while True:
        c: dict[str, Any] = api.get(f"/v1/commands/{command_id}", wait_s=0.5)
        _steps(c, shown)
        if c["state"] in FINAL or time.monotonic() > deadline:
            return c
        time.sleep(0.1)


@command.command("send")
def send(
    vin: str,
    name: str,
    param: Annotated[
        list[str] | None, typer.Option("--param", "-p", help="name=value, repeatable")
    ] = None,
    wait: Annotated[bool, typer.Option(help="follow the lifecycle until it ends")] = False,
    expires: Annotated[int | None, typer.Option(help="seconds it may wait for the vehicle")] = None,
    key: Annotated[str | None, typer.Option(help="idempotency key (safe to retry)")] = None,
) -> None:
    """Send a command (see `autocloud command catalog`) to a vehicle."""
    api = Api()
    body = {
        "name": name,
        "params": parse_params(param or []),
        "idempotency_key": key,
        "expires_in_s": expires,
    }
    c = api.post(f"/v1/vehicles/{vin}/commands", body)
    console.print(f"command [bold]{c['id']}[/] {c['name']} → {c['vin']}: {c['state']}")
    if wait:
        final = follow(api, c["id"], (c["expires_ms"] - c["issued_ms"]) / 1000 + 5)
        if final["state"] != "succeeded":
            raise typer.Exit(1)


@command.command("send-signed")
def send_signed(
    vin: str,
    file: Annotated[Path, typer.Argument(help="the signed command (JSON) an app produced")],
    wait: Annotated[bool, typer.Option(help="follow the lifecycle until it ends")] = False,
) -> None:
    """Forward a command an app signed with a key enrolled for the vehicle."""
    try:
        body = json.loads(file.read_text(encoding="utf-8"))
    except OSError as exc:
        raise CliError(f"cannot read {file}: {exc.strerror or exc}") from None
    except ValueError as exc:
        raise CliError(f"{file} is not JSON: {exc}") from None
    if not isinstance(body, dict):
        raise CliError(f"{file} must hold one signed command (a JSON object)")
    api = Api()
    c = api.post(f"/v1/vehicles/{vin}/commands/signed", body)
    console.print(
        f"command [bold]{c['id']}[/] {c['name']} → {c['vin']}: {c['state']} "
        f"(app key {c['kid']}, counter {c['counter']})"
    )
    if wait:
        final = follow(api, c["id"], max(0.0, (c["expires_ms"] - time.time() * 1000) / 1000) + 5)
        if final["state"] != "succeeded":
            raise typer.Exit(1)


def _row(c: dict[str, Any]) -> tuple[Any, ...]:
    return (
        c["id"],
        c["vin"],
        c["name"],
        c["state"],
        c["reason"] or "",
        when(c["issued_ms"]),
        c["caller"],
    )


@command.command("list")
def list_commands(
    vin: Annotated[str | None, typer.Option(help="only this vehicle")] = None,
    state: Annotated[str | None, typer.Option(help="only in this state")] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 50,
) -> None:
    """Recent commands, newest first."""
    path = f"/v1/vehicles/{vin}/commands" if vin else "/v1/commands"
    items = Api().get(path, state=state, limit=limit)["items"]
    columns = ["id", "vin", "command", "state", "reason", "issued", "by"]
    console.print(table("Commands", columns, [_row(c) for c in items]))


@command.command("show")
def show(command_id: str) -> None:
    """One command: parameters, state, reason, result and each step's timing."""
    c = Api().get(f"/v1/commands/{command_id}")
    console.print(f"[bold]{c['id']}[/]  {c['name']} {json.dumps(c['params'])} → {c['vin']}")
    console.print(f"  by {c['caller']}, expires {when(c['expires_ms'])}, counter {c['counter']}")
    _steps(c, set())
    if c["state"] not in FINAL:
        console.print(f"  (now {c['state']})")


@command.command("catalog")
def catalog() -> None:
    """Every command the platform knows, from its command table."""
    rows = []
    for s in Api().get("/v1/commands/catalog"):
        params = ", ".join(
            f"{p['name']}:{p['type']}"
            + (f" {p['min']:g}..{p['max']:g}" if p["min"] is not None else "")
            + (f" {p['unit']}" if p["unit"] else "")
            for p in s["params"]
        )
        rules = ", ".join(i["refused_when"] for i in s["interlocks"])
        who = s["min_role"] + (" / owner" if s["owner_may"] else "")
        rows.append((s["name"], params, who, rules, f"{s['default_expiry_s']} s"))
    columns = ["command", "parameters", "who", "refused when", "expiry"]
    console.print(table("Commands", columns, rows))


def audit(
    vin: Annotated[str | None, typer.Option(help="only this vehicle")] = None,
    command_id: Annotated[str | None, typer.Option("--command", help="only this command")] = None,
    since: Annotated[str, typer.Option(help="e.g. 7d, or an ISO time")] = "7d",
    csv_file: Annotated[
        Path | None, typer.Option("--csv", help="write every entry as CSV to this file")
    ] = None,
) -> None:
    """The command audit log: who did what to which vehicle, when, and the outcome."""
    api = Api()
    params = {"vin": vin, "command_id": command_id, "since": since}
    if csv_file is not None:
        response = api.request(
            "GET",
            "/v1/audit",
            params={**{k: v for k, v in params.items() if v}, "format": "csv", "limit": 100_000},
        )
        csv_file.write_text(response.text)
        console.print(f"audit log written to {csv_file}")
        return
    items = list(api.pages("/v1/audit", **params, limit=1000))
    rows = [
        (when(a["at_ms"]), a["vin"] or "", a["name"] or "", a["action"], a["caller"], a["detail"])
        for a in items
    ]
    columns = ["when", "vin", "command", "action", "who", "detail"]
    console.print(table("Audit log", columns, rows))
