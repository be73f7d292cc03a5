"""`autocloud alerts [--open]`, `alerts ack ID`, `alert-rules add|list|rm`."""

from typing import Annotated, Any

import typer

from autocloud.domain.alerts import parse_expression
from autocloud.entrypoints.cli.client import Api, CliError
from autocloud.entrypoints.cli.render import console, table, value, when

alerts = typer.Typer(help="Alerts raised by alert rules.", invoke_without_command=True)
rules = typer.Typer(help="Alert rules of a brand (docs/diagnostics.md).", no_args_is_help=True)


@alerts.callback()
def list_alerts(
    ctx: typer.Context,
    open_only: Annotated[bool, typer.Option("--open", help="only open alerts")] = False,
    state: Annotated[str | None, typer.Option(help="open, acknowledged or resolved")] = None,
    vin: Annotated[str | None, typer.Option()] = None,
    rule: Annotated[int | None, typer.Option(help="a rule id")] = None,
    limit: Annotated[int, typer.Option()] = 50,
) -> None:
    """Alerts, newest first."""
    if ctx.invoked_subcommand is not None:
        return
    wanted = "open" if open_only else state
    items = Api().get("/v1/alerts", state=wanted, vin=vin, rule_id=rule, limit=limit)["items"]
    rows = [
        (
            a["id"],
            a["state"],
            a["severity"],
            a["vin"],
            a["rule"],
            a["detail"][:70],
            when(a["opened_ts"]),
            f"{a['acked_by']} {when(a['acked_ms'])}" if a["acked_by"] else "-",
        )
        for a in items
    ]
    columns = ["id", "state", "severity", "VIN", "rule", "detail", "opened", "acknowledged"]
    console.print(table(f"Alerts ({len(rows)})", columns, rows))


@alerts.command("ack")
def ack(alert_id: int) -> None:
    """Acknowledge an open alert."""
    a = Api().post(f"/v1/alerts/{alert_id}/ack", None)
    console.print(f"alert {a['id']} is {a['state']} (by {a['acked_by']} at {when(a['acked_ms'])})")


def _condition(
    when_: str | None,
    for_s: float,
    hysteresis: float,
    while_: str | None,
    event: str | None,
    dtc_severity: str | None,
    codes: list[str] | None,
    clear: str | None,
) -> dict[str, Any]:
    if (when_ is None) == (event is None):
        raise CliError("give either --when 'PATH OP VALUE' or --event TYPE")
    if event is not None:
        spec: dict[str, Any] = {"type": event}
        for key, given in (("severity", dtc_severity), ("codes", codes), ("clear_type", clear)):
            if given:
                spec[key] = given
        return {"event": spec}
    assert when_ is not None
    path, op, threshold = parse_expression(when_)
    signal: dict[str, Any] = {
        "path": path,
        "op": op,
        "threshold": threshold,
        "for_s": for_s,
        "hysteresis": hysteresis,
    }
    if while_:
        gpath, gop, gvalue = parse_expression(while_)
        signal["while"] = {"path": gpath, "op": gop, "value": gvalue}
    return {"signal": signal}


@rules.command("add")
def add(
    name: str,
    when_: Annotated[
        str | None, typer.Option("--when", help="e.g. 'Vehicle.Speed > 120' (* = any segment)")
    ] = None,
    for_s: Annotated[float, typer.Option("--for", help="seconds it must hold")] = 0,
    hysteresis: Annotated[float, typer.Option(help="resolve only this far back")] = 0,
    while_: Annotated[
        str | None, typer.Option("--while", help="guard, e.g. 'Vehicle.IsMoving == false'")
    ] = None,
    event: Annotated[str | None, typer.Option(help="event type, e.g. dtc.raised")] = None,
    dtc_severity: Annotated[str | None, typer.Option(help="dtc.raised: minimum")] = None,
    code: Annotated[list[str] | None, typer.Option(help="dtc.raised: code prefix")] = None,
    clear: Annotated[str | None, typer.Option(help="event that resolves the alert")] = None,
    severity: Annotated[str, typer.Option(help="info, warning or critical")] = "warning",
    brand: Annotated[str | None, typer.Option()] = None,
) -> None:
    """Add an alert rule on a signal (--when) or an event (--event)."""
    body = {
        "name": name,
        "brand": brand,
        "severity": severity,
        **_condition(when_, for_s, hysteresis, while_, event, dtc_severity, code, clear),
    }
    r = Api().post("/v1/alert-rules", body)
    console.print(f"rule {r['id']} ({r['brand']}): {_describe(r)}")


@rules.command("list")
def list_rules(brand: Annotated[str | None, typer.Option()] = None) -> None:
    """The alert rules."""
    items = list(Api().pages("/v1/alert-rules", brand=brand, limit=1000))
    rows = [(r["id"], r["brand"], r["name"], r["severity"], _describe(r)) for r in items]
    console.print(table("Alert rules", ["id", "brand", "name", "severity", "condition"], rows))


@rules.command("rm")
def remove(rule_id: int) -> None:
    """Delete a rule (its open alerts resolve)."""
    Api().request("DELETE", f"/v1/alert-rules/{rule_id}")
    console.print(f"rule {rule_id} deleted")


def _describe(r: dict[str, Any]) -> str:
    if r.get("event"):
        e = r["event"]
        extra = [f"{k}={value(v)}" for k, v in e.items() if k != "type"]
        return " ".join([e["type"], *extra])
    s = r["signal"]
    text = f"{s['path']} {s['op']} {value(s['threshold'])}"
    if s.get("for_s"):
        text += f" for {s['for_s']:g} s"
    if s.get("hysteresis"):
        text += f" (±{s['hysteresis']:g})"
    if s.get("while"):
        g = s["while"]
        text += f" while {g['path']} {g['op']} {value(g['value'])}"
    return text


__all__ = ["alerts", "rules"]
