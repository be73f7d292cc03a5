"""`autocloud webhooks add|list|rm|deliveries|redeliver`: signed webhooks through the API."""

from typing import Annotated

import typer

from autocloud.entrypoints.cli.client import Api
from autocloud.entrypoints.cli.render import console, table, when

webhooks = typer.Typer(help="Signed webhooks for alert, dtc, command, diag.", no_args_is_help=True)


@webhooks.command("add")
def add(
    url: str,
    event: Annotated[
        list[str], typer.Option("--event", help="alert, dtc, command or diag (repeat)")
    ],
    brand: Annotated[str | None, typer.Option(help="brand (a group token must name one)")] = None,
) -> None:
    """Subscribe URL; prints the signing secret, which is shown only this once."""
    made = Api().post("/v1/webhooks", {"url": url, "events": event, "brand": brand})
    console.print(f"webhook [bold]{made['id']}[/] for {made['brand']}: {', '.join(made['events'])}")
    console.print(f"[yellow]signing secret — shown once, store it now:[/] {made['secret']}")


@webhooks.command("list")
def list_webhooks(brand: Annotated[str | None, typer.Option()] = None) -> None:
    items = Api().get("/v1/webhooks", brand=brand)["items"]
    rows = [
        (w["id"], w["brand"], w["url"], ", ".join(w["events"]), when(w["created_ms"]))
        for w in items
    ]
    console.print(table("Webhooks", ["id", "brand", "url", "events", "created"], rows))


@webhooks.command("rm")
def remove(webhook_id: int) -> None:
    """Unsubscribe (its pending deliveries and log go with it)."""
    Api().request("DELETE", f"/v1/webhooks/{webhook_id}")
    console.print(f"webhook {webhook_id} removed")


@webhooks.command("deliveries")
def list_deliveries(
    webhook: Annotated[int | None, typer.Option(help="one webhook's")] = None,
    dead: Annotated[bool, typer.Option("--dead", help="only the dead letters")] = False,
    limit: Annotated[int, typer.Option()] = 50,
) -> None:
    """The delivery log, newest first."""
    items = Api().get(
        "/v1/webhook-deliveries",
        webhook_id=webhook,
        status="dead" if dead else None,
        limit=limit,
    )["items"]
    rows = [
        (
            d["id"],
            d["webhook_id"],
            d["event"],
            d["vin"],
            d["status"],
            d["attempts"],
            d["last_status_code"] if d["last_status_code"] is not None else "-",
            (d["last_error"] or "")[:60],
            when(d["created_ms"]),
        )
        for d in items
    ]
    columns = ["id", "webhook", "event", "vin", "status", "tries", "http", "error", "created"]
    console.print(table("Webhook deliveries", columns, rows))


@webhooks.command("redeliver")
def redeliver(delivery_id: int) -> None:
    """Send a dead delivery again."""
    Api().request("POST", f"/v1/webhook-deliveries/{delivery_id}/redeliver")
    console.print(f"delivery {delivery_id} queued again")
