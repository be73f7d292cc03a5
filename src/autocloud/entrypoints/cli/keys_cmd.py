"""`autocloud keys VIN`: the keys a vehicle trusts for commands and whether the car applied
the newest signed key list (`GET /v1/vehicles/{vin}/keys` and `.../key-list`)."""

from typing import Any

from autocloud.entrypoints.cli.client import Api
from autocloud.entrypoints.cli.render import console, table, when

STYLE = {"applied": "green", "pending": "yellow", "refused": "red", "none": "dim"}


def keys(vin: str) -> None:
    """The command keys of a vehicle, and what the car confirmed of its key lists."""
    api = Api()
    listed = api.get(f"/v1/vehicles/{vin}/keys")
    rows = [
        (
            k["kid"],
            k["role"],
            k["label"],
            k["added_by"],
            when(k["added_ms"]) if k["added_ms"] else "-",
        )
        for k in listed
    ]
    console.print(table(f"Keys of {vin}", ["kid", "role", "label", "added by", "added"], rows))
    console.print(describe(api.get(f"/v1/vehicles/{vin}/key-list")))


def describe(s: dict[str, Any]) -> str:
    """One line: the newest list, what the car applied, and its last refusal if current."""
    status = s["status"]
    style = STYLE.get(status, "")
    if status == "none":
        return f"key list: [{style}]none sent[/] (the car trusts the keys it was provisioned with)"
    text = f"key list {s['serial']}: [{style}]{status}[/]"
    if s["applied_serial"] is None:
        text += ", the car has confirmed no list yet"
    else:
        text += f", the car applied {s['applied_serial']} at {when(s['applied_ms'])}"
    if status == "pending" and s["behind"]:
        text += f" ({s['behind']} behind)"
    if s["refused_reason"] is not None:
        which = "an unreadable list" if s["refused_serial"] is None else s["refused_serial"]
        text += f"; last refused: {which} ({s['refused_reason']}) at {when(s['refused_ms'])}"
    return text


__all__ = ["describe", "keys"]
