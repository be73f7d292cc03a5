"""Keys a vehicle trusts for commands besides the platform's: owners' and operators' apps.

What: enrolling an app's Ed25519 public key with a vehicle (`enrol`); choosing which keys a
caller may revoke (`revocable`: an operator or admin any app key of the vehicle, an owner
only their own); finding the enrolled key an app-signed command names (`app_key`; an owner's
token may use only keys it enrolled itself) and checking that its role may sign the command
(`permitted`). The vehicle learns the keys at provisioning (`GET /v1/vehicles/{vin}/keys`)
and from the signed key list the platform publishes after each change
(`Delivery.publish_keys`); it answers each list (`keys/result`), and `KeyLists` tells the
API and the CLI whether the car applied the newest one, lags behind, or refused it.
"""

from collections.abc import Callable, Sequence

from autocloud.domain.access import Principal, Role
from autocloud.domain.command_keyset import NOT_PERMITTED, PERMITTED, KeyListState, permits
from autocloud.domain.command_records import AuditEntry, Command, VehicleKey
from autocloud.domain.command_signing import key_id, parse_public_key
from autocloud.domain.errors import Conflict, InvalidInput, NotFound, Refused
from autocloud.domain.records import Vehicle
from autocloud.ports.commands import CommandStore
from autocloud.ports.key_lists import KeyListStore
from autocloud.services.registry import RegistryService


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


def permitted(key: VehicleKey, name: str) -> None:
    """Refused (`not_permitted`) when the key's role may not sign command `name`; the
    vehicle refuses it too."""
    if not permits(key.role, name):
        allowed = ", ".join(sorted(PERMITTED[key.role]))
        raise Refused(
            NOT_PERMITTED,
            f"{name} may not be signed by {key.role.value} key {key.kid}; it may sign: {allowed}",
        )


def revocable(who: Principal, keys: Sequence[VehicleKey], kid: str, platform_kid: str) -> str:
    """The kid to revoke: an operator or admin may revoke any app key of the vehicle, its
    owner only a key they enrolled (another's is not found, as one that does not exist)."""
    if kid == platform_kid:
        raise Conflict("the platform's key cannot be revoked from one vehicle")
    if who.owner_id is None:
        who.require(Role.OPERATOR)
    for key in keys:
        if key.kid == kid and (who.owner_id is None or key.owner_id == who.owner_id):
            return kid
    raise NotFound(f"key {kid!r} not found")


def revoked_audit(
    who: str, vehicle: Vehicle, now: int, why: str
) -> Callable[[VehicleKey], AuditEntry]:
    """The audit entry of each revoked key."""

    def entry(key: VehicleKey) -> AuditEntry:
        detail = f"{key.kid} ({key.label}): {why}"
        return AuditEntry(now, who, "key_removed", detail, vehicle.brand, vehicle.vin)

    return entry


def ended_audit(who: str, now: int, kids_why: str) -> Callable[[Command], AuditEntry]:
    """The audit entry (and reason) of each open command a revoked key had signed."""

    def entry(c: Command) -> AuditEntry:
        detail = f"the key that signed it was revoked ({kids_why})"
        return AuditEntry(now, who, "expired", detail, c.brand, c.vin, c.id, c.name)

    return entry


class KeyLists:
    """What each car confirmed of the key lists it was sent, for the API and the CLI."""

    def __init__(self, store: KeyListStore, registry: RegistryService) -> None:
        self._store = store
        self._registry = registry

    def state(self, who: Principal, vin: str) -> tuple[Vehicle, KeyListState]:
        """The vehicle (in the caller's scope: another's is not found) and its key list
        state: the newest serial sent, the serial the car applied, its last refusal."""
        vehicle = self._registry.vehicle(who, vin)
        return vehicle, self._store.key_list_state(vehicle.id)
