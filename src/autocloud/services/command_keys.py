"""Keys a vehicle trusts for commands besides the platform's: owners' and operators' apps.

What: enrolling an app's Ed25519 public key with a vehicle (`enrol`), and finding the
enrolled key an app-signed command names (`app_key`; an owner's token may use only keys it
enrolled itself). The vehicle learns the keys at provisioning (`GET /v1/vehicles/{vin}/keys`).
"""

from collections.abc import Sequence

from autocloud.domain.access import Principal, Role
from autocloud.domain.command_records import AuditEntry, VehicleKey
from autocloud.domain.command_signing import key_id, parse_public_key
from autocloud.domain.errors import Conflict, InvalidInput
from autocloud.domain.records import Vehicle
from autocloud.ports.commands import CommandStore


def enrol(
    store: CommandStore,
    platform_kid: str,
    who: Principal,
    vehicle: Vehicle,
    public_key: str,
    label: str,
    now: int,
) -> VehicleKey:
    """Enrol an app's public key with a vehicle (an operator, or the vehicle's owner)."""
    if who.owner_id is None:
        who.require(Role.OPERATOR)
    try:
        raw = parse_public_key(public_key)
    except ValueError as exc:
        raise InvalidInput(str(exc)) from None
    label = label.strip()
    if not 0 < len(label) <= 200:
        raise InvalidInput("a key needs a label of 1 to 200 characters")
    kid = key_id(raw)
    if kid == platform_kid:
        raise Conflict("this is the platform's own key")
    added = store.add_key(vehicle.id, VehicleKey(kid, raw, label, now, who.name, who.owner_id))
    store.audit(
        AuditEntry(now, who.name, "key_added", f"{kid} ({label})", vehicle.brand, vehicle.vin)
    )
    return added


def app_key(who: Principal, keys: Sequence[VehicleKey], kid: str, platform_kid: str) -> VehicleKey:
    """The enrolled key `kid` an app signed with; an owner may use only their own keys."""
    if kid == platform_kid:
        raise InvalidInput("the platform signs its own commands: send them unsigned")
    for key in keys:
        if key.kid == kid and (who.owner_id is None or key.owner_id == who.owner_id):
            return key
    raise InvalidInput(f"key {kid!r} is not enrolled with this vehicle for this token")
