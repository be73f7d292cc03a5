"""`autocloud brands|vehicles|owners …`: provisioning through the API."""

from typing import Annotated

import typer

from autocloud.entrypoints.cli.client import Api
from autocloud.entrypoints.cli.render import console, table, when

brands = typer.Typer(help="Brands (tenants) of the group.", no_args_is_help=True)
vehicles = typer.Typer(help="Vehicles and their MQTT credentials.", no_args_is_help=True)
owners = typer.Typer(help="Owners of vehicles.", no_args_is_help=True)


@brands.command("add")
def brand_add(brand_id: str, name: str) -> None:
    """Create a brand (group admin)."""
    b = Api().post("/v1/brands", {"id": brand_id, "name": name})
    console.print(f"brand [bold]{b['id']}[/] ({b['name']}) created")


@brands.command("list")
def brand_list() -> None:
    items = Api().get("/v1/brands")["items"]
    console.print(
        table(
            "Brands",
            ["id", "name", "created"],
            [(b["id"], b["name"], when(b["created_ms"])) for b in items],
        )
    )


def _show_credential(done: dict[str, object]) -> None:
    cred = done["credential"]
    assert isinstance(cred, dict)
    console.print(
        "[yellow]MQTT credential — shown once, store it in the vehicle now:[/]\n"
        f"  url       {cred['mqtt_url']}\n  username  {cred['username']}\n"
        f"  password  {cred['password']}\n  topics    {cred['topic_root']}…"
    )


@vehicles.command("add")
def vehicle_add(
    vin: Annotated[str, typer.Option(help="17-character VIN")],
    brand: Annotated[str, typer.Option(help="brand id")],
    model: Annotated[str, typer.Option(help="model name")] = "",
) -> None:
    """Register a vehicle and print its MQTT credential (once)."""
    done = Api().post("/v1/vehicles", {"vin": vin, "brand": brand, "model": model})
    v = done["vehicle"]
    console.print(
        f"vehicle [bold]{v['vin']}[/] added to {v['brand']}: "
        f"{v['manufacturer'] or 'unknown maker'}, model year {v['model_year'] or '?'}"
    )
    _show_credential(done)


@vehicles.command("list")
def vehicle_list(
    brand: Annotated[str | None, typer.Option()] = None,
    model: Annotated[str | None, typer.Option()] = None,
) -> None:
    rows = [
        (
            v["vin"],
            v["brand"],
            v["model"],
            v["manufacturer"] or "",
            v["model_year"] or "",
            when(v["created_ms"]),
        )
        for v in Api().pages("/v1/vehicles", brand=brand, model=model, limit=1000)
    ]
    console.print(
        table(f"Vehicles ({len(rows)})", ["VIN", "brand", "model", "maker", "year", "added"], rows)
    )


@vehicles.command("rotate")
def vehicle_rotate(vin: str) -> None:
    """Replace a vehicle's MQTT password."""
    _show_credential(Api().post(f"/v1/vehicles/{vin}/credential", {}))


@vehicles.command("remove")
def vehicle_remove(vin: str) -> None:
    """Delete a vehicle and revoke its credential (admin)."""
    Api().request("DELETE", f"/v1/vehicles/{vin}")
    console.print(f"vehicle {vin} removed")


@owners.command("add")
def owner_add(
    brand: Annotated[str, typer.Option()],
    name: Annotated[str, typer.Option()],
    email: Annotated[str, typer.Option()],
) -> None:
    o = Api().post("/v1/owners", {"brand": brand, "name": name, "email": email})
    console.print(f"owner {o['id']} ({o['name']}) created")


@owners.command("attach")
def owner_attach(vin: str, owner_id: int) -> None:
    Api().post(f"/v1/vehicles/{vin}/owners", {"owner_id": owner_id})
    console.print(f"owner {owner_id} attached to {vin}")


@owners.command("list")
def owner_list(brand: Annotated[str | None, typer.Option()] = None) -> None:
    rows = [
        (o["id"], o["brand"], o["name"], o["email"]) for o in Api().pages("/v1/owners", brand=brand)
    ]
    console.print(table("Owners", ["id", "brand", "name", "email"], rows))
