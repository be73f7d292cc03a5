"""`autocloud diag VIN`: a remote UDS readout of a vehicle, printed as a table."""

import time
from typing import Annotated, Any

import typer

from autocloud.entrypoints.cli.client import Api, CliError
from autocloud.entrypoints.cli.render import console, table, when

POLL_S = 0.5


def _outcome(result: dict[str, Any]) -> str:
    """One result cell: the decoded value, the NRC, or why there is none."""
    status = result["status"]
    if status == "negative":
        return f"NRC 0x{result['nrc']:02X} {result['nrc_name']}"
    if status in ("invalid", "no_response"):
        return str(result.get("error", "no response"))
    if "dtcs" in result:
        codes = [f"{d['code']} (0x{d['status']:02X})" for d in result["dtcs"]]
        return ", ".join(codes) or "no DTCs"
    if "odometer_km" in result:
        return f"{result['odometer_km']:,.1f} km"
    if "software_version" in result:
        return f"{result['software_version']} / {result['supplier_software_version']}"
    if "vin" in result:
        return str(result["vin"])
    return "cleared" if result.get("cleared") else "ok"


def show(session: dict[str, Any]) -> None:
    """Print a session: a header line, then one row per (ECU, read)."""
    console.print(
        f"session [bold]{session['id']}[/] of {session['vin']}: {session['status']} "
        f"(requested {when(session['created_ms'])} by {session['requested_by']})"
    )
    report = session.get("report")
    if not report:
        if session.get("error"):
            console.print(f"[red]{session['error']}[/]")
        return
    rows = [
        (unit["ecu"], unit["address"] or "-", r["read"], r["status"], _outcome(r))
        for unit in report["ecus"]
        for r in unit["results"]
    ]
    console.print(table("Diagnostic report", ["ECU", "address", "read", "status", "result"], rows))
    summary = report["summary"]
    console.print(
        f"{summary['positive']} answered, {summary['negative']} refused, "
        f"{summary['no_response']} silent; active DTCs: "
        f"{', '.join(summary['active_dtcs']) or 'none'}"
    )


def diag(
    vin: str,
    ecu: Annotated[
        list[str] | None, typer.Option("--ecu", help="ECU (repeat); default: by powertrain")
    ] = None,
    read: Annotated[
        list[str] | None,
        typer.Option("--read", help="dtcs, vin, software, odometer (repeat); default: all"),
    ] = None,
    clear_dtcs: Annotated[
        bool, typer.Option("--clear-dtcs", help="clear the DTCs after reading (admin)")
    ] = False,
    wait: Annotated[bool, typer.Option("--wait", help="wait for the report and print it")] = False,
    timeout: Annotated[float, typer.Option(help="seconds to wait with --wait")] = 120.0,
) -> None:
    """Read a vehicle's ECUs remotely (UDS over MQTT): DTCs, VIN, software, odometer."""
    api = Api()
    body = {"ecus": ecu or [], "reads": read or None, "clear_dtcs": clear_dtcs}
    session = api.post(f"/v1/vehicles/{vin}/diagnostics", body)
    if not wait:
        console.print(
            f"session [bold]{session['id']}[/] sent to {len(session['ecus'])} ECUs; "
            f"see it with: autocloud diag-show {vin} {session['id']}"
        )
        return
    deadline = time.monotonic() + timeout
    url = f"/v1/vehicles/{vin}/diagnostics/{session['id']}"
    while session["status"] == "pending":
        if time.monotonic() > deadline:
            raise CliError(f"no report within {timeout:.0f} s; the session is {session['id']}")
        time.sleep(POLL_S)
        session = api.get(url)
    show(session)


def diag_show(vin: str, session_id: str) -> None:
    """Print one diagnostic session and its report."""
    show(Api().get(f"/v1/vehicles/{vin}/diagnostics/{session_id}"))
