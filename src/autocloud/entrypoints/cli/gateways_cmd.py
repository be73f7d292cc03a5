"""`autocloud gateways add|grant|revoke|list|show|rm`: fleet-gateway credentials via the API.

VIN lists come as arguments or from a file (one VIN a line, `#` comments), and are sent in
calls of at most 10,000 VINs.
"""

from pathlib import Path
from typing import Annotated

import typer

from autocloud.domain.gateway import MAX_GRANTS_PER_CALL
from autocloud.entrypoints.cli.client import Api, CliError
from autocloud.entrypoints.cli.render import console, table, when

gateways = typer.Typer(
    help="Fleet gateways: one MQTT login publishing for many vehicles of a brand.",
    no_args_is_help=True,
)

VinsArg = Annotated[list[str] | None, typer.Argument(help="VINs")]
FileOpt = Annotated[Path | None, typer.Option("--file", "-f", help="a file of VINs, one a line")]


def _vins(vins: list[str] | None, file: Path | None) -> list[str]:
    """The VINs of the arguments and of the file, in order, without blanks and comments."""
    found = list(vins or [])
    if file is not None:
        try:
            lines = file.read_text().splitlines()
        except OSError as exc:
            raise CliError(f"cannot read {file}: {exc.strerror}") from None
        found += [s for line in lines if (s := line.split("#", 1)[0].strip())]
    if not found:
        raise CliError("give VINs as arguments or with --file")
    return found


def _gateway_id(api: Api, ref: str) -> int:
    """A gateway by id, or by name (unique within the caller's view)."""
    if ref.isdigit():
        return int(ref)
    matches = [g for g in api.get("/v1/gateways")["items"] if ref in (g["name"], g["username"])]
    if len(matches) != 1:
        raise CliError(
            f"no gateway named {ref!r}" if not matches else f"{ref!r} is ambiguous: use its id"
        )
    return int(matches[0]["id"])


@gateways.command("add")
def gateway_add(
    name: Annotated[str, typer.Argument(help="lower-case name, unique in the brand")],
    brand: Annotated[str | None, typer.Option(help="brand id (default: the token's)")] = None,
) -> None:
    """Create a gateway and print its MQTT credential (once)."""
    done = Api().post("/v1/gateways", {"name": name, "brand": brand})
    g, cred = done["gateway"], done["credential"]
    console.print(f"gateway [bold]{g['name']}[/] (id {g['id']}) created in {g['brand']}")
    console.print(
        "[yellow]MQTT credential — shown once, store it in the gateway now:[/]\n"
        f"  url        {cred['mqtt_url']}\n  username   {cred['username']}\n"
        f"  password   {cred['password']}\n  client id  {cred['client_id']}\n"
        f"  topics     {', '.join(cred['topics'])} (granted VINs only)"
    )


def _change(action: str, ref: str, vins: list[str] | None, file: Path | None) -> None:
    api = Api()
    gateway_id = _gateway_id(api, ref)
    wanted = _vins(vins, file)
    result = None
    for start in range(0, len(wanted), MAX_GRANTS_PER_CALL):
        chunk = wanted[start : start + MAX_GRANTS_PER_CALL]
        result = api.post(f"/v1/gateways/{gateway_id}/{action}", {"vins": chunk})
    assert result is not None
    console.print(f"gateway [bold]{result['name']}[/] now holds {result['vins']:,} VINs")


@gateways.command("grant")
def gateway_grant(
    gateway: Annotated[str, typer.Argument(help="gateway id or name")],
    vins: VinsArg = None,
    file: FileOpt = None,
) -> None:
    """Let the gateway publish for these registered VINs of its brand."""
    _change("grant", gateway, vins, file)


@gateways.command("revoke")
def gateway_revoke(
    gateway: Annotated[str, typer.Argument(help="gateway id or name")],
    vins: VinsArg = None,
    file: FileOpt = None,
) -> None:
    """Take VINs back from the gateway."""
    _change("revoke", gateway, vins, file)


@gateways.command("list")
def gateway_list(brand: Annotated[str | None, typer.Option()] = None) -> None:
    items = Api().get("/v1/gateways", brand=brand)["items"]
    rows = [
        (g["id"], g["brand"], g["name"], g["username"], f"{g['vins']:,}", when(g["created_ms"]))
        for g in items
    ]
    console.print(
        table(f"Gateways ({len(rows)})", ["id", "brand", "name", "login", "VINs", "added"], rows)
    )


@gateways.command("show")
def gateway_show(gateway: Annotated[str, typer.Argument(help="gateway id or name")]) -> None:
    """The gateway and the VINs it may publish for."""
    api = Api()
    got = api.get(f"/v1/gateways/{_gateway_id(api, gateway)}")
    g = got["gateway"]
    console.print(f"gateway [bold]{g['name']}[/] of {g['brand']} ({g['username']}):")
    for vin in got["vins"]:
        console.print(f"  {vin}")
    console.print(f"{len(got['vins']):,} VINs")


@gateways.command("rm")
def gateway_rm(gateway: Annotated[str, typer.Argument(help="gateway id or name")]) -> None:
    """Delete the gateway; its MQTT session is dropped (admin)."""
    api = Api()
    gateway_id = _gateway_id(api, gateway)
    api.request("DELETE", f"/v1/gateways/{gateway_id}")
    console.print(f"gateway {gateway} deleted")
