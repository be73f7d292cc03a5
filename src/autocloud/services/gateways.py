"""Fleet gateways: create a brand's gateway credential, grant and revoke its VINs, delete it.

Every call takes the calling principal and applies its role and tenant scope, as the registry
does: a gateway or VIN outside the caller's brand answers exactly like one that does not
exist. The database is the source of truth; each change is then pushed to the broker through
the `GatewayAccess` port (Mosquitto's dynamic security, or the embedded broker), which is what
actually stops a gateway from publishing for a VIN it does not hold.
"""

from collections.abc import Callable
from dataclasses import dataclass

from autocloud.domain.access import Principal, Role
from autocloud.domain.clock import Clock
from autocloud.domain.errors import InvalidInput, NotFound
from autocloud.domain.gateway import (
    GATEWAY_NAME,
    GATEWAY_PREFIX,
    MAX_GRANTS_PER_CALL,
    Gateway,
    gateway_username,
)
from autocloud.domain.secrets import digest, matches, new_secret
from autocloud.domain.vin import validate_vin
from autocloud.ports.gateways import GatewayAccess, GatewayStore

MAX_ID = 2**31 - 1  # gateway ids are SQL INTEGER: PostgreSQL refuses to bind a larger one


@dataclass(frozen=True, slots=True)
class NewGateway:
    """A new gateway and its broker secret; the secret is shown once and never stored."""

    gateway: Gateway
    secret: str


class GatewayService:
    def __init__(self, store: GatewayStore, access: GatewayAccess, clock: Clock) -> None:
        self._store = store
        self._access = access
        self._clock = clock

    def create(self, who: Principal, brand: str | None, name: str) -> NewGateway:
        """A new gateway of `brand` (a brand token's own brand by default), no VINs yet."""
        who.require(Role.OPERATOR)
        brand = brand if brand is not None else who.brand
        if brand is None:
            raise InvalidInput("say which brand the gateway belongs to (brand)")
        who.check_brand(brand, f"brand {brand!r}")
        if not GATEWAY_NAME.match(name):
            raise InvalidInput(
                f"gateway name {name!r} must be lower-case letters, digits and '-', at most 64"
            )
        secret = new_secret()
        made = self._store.add_gateway(brand, name, digest(secret), self._clock.now_ms())
        try:
            self._access.set_gateway(made.username, secret, frozenset())
        except Exception:
            self._store.delete_gateway(made.id)  # no credential the broker does not know
            raise
        return NewGateway(made, secret)

    def gateways(self, who: Principal, brand: str | None = None) -> list[Gateway]:
        return self._store.gateways(who.scope(brand))

    def gateway(self, who: Principal, gateway_id: int) -> Gateway:
        found = self._store.gateway(gateway_id) if 0 < gateway_id <= MAX_ID else None
        if found is None or not who.sees(found.brand):
            # The id is not echoed: "no such gateway" and "another tenant's" read the same.
            raise NotFound("gateway not found: no gateway with this id is visible to this token")
        return found

    def granted(self, who: Principal, gateway_id: int) -> list[str]:
        """The VINs the gateway may publish for, sorted."""
        return sorted(self._store.granted(self.gateway(who, gateway_id).id))

    def grant(self, who: Principal, gateway_id: int, vins: list[str]) -> Gateway:
        """Let the gateway publish for `vins` (registered vehicles of its brand), in bulk."""
        who.require(Role.OPERATOR)
        gateway = self.gateway(who, gateway_id)
        wanted = self._checked(vins)
        found = self._store.vehicles_of(wanted)
        foreign = [i for i, vin in enumerate(wanted) if found.get(vin, (0, ""))[1] != gateway.brand]
        if foreign:
            # No VIN in the answer: unknown and another brand's VINs must read the same.
            raise InvalidInput(
                f"{len(foreign)} of the VINs are not registered vehicles of brand "
                f"{gateway.brand!r} (the first is item {foreign[0]} of the list); nothing granted"
            )
        self._store.grant(gateway.id, [found[vin][0] for vin in wanted])
        return self._push(gateway)

    def revoke(self, who: Principal, gateway_id: int, vins: list[str]) -> Gateway:
        """Take VINs back from the gateway; VINs it did not hold are ignored."""
        who.require(Role.OPERATOR)
        gateway = self.gateway(who, gateway_id)
        self._store.revoke(gateway.id, self._checked(vins))
        return self._push(gateway)

    def delete(self, who: Principal, gateway_id: int) -> None:
        who.require(Role.ADMIN)
        gateway = self.gateway(who, gateway_id)
        # As for vehicles: the broker first (no open door if the delete fails), then again.
        self._access.remove_gateway(gateway.username)
        self._store.delete_gateway(gateway.id)
        self._access.remove_gateway(gateway.username)

    def vehicle_removing(self, vehicle_id: int) -> Callable[[], None]:
        """Registry hook, called before a vehicle is deleted: returns what to run after the
        delete, which hands the broker the grants of each gateway that held the vehicle (the
        database drops the grant with the vehicle; the broker would keep it, and let the
        gateway publish for the VIN, even once registered again for another brand)."""
        holders = self._store.holding(vehicle_id)

        def after_delete() -> None:
            for gateway in holders:
                self._push(gateway)

        return after_delete

    def connect_broker(self, access: GatewayAccess) -> None:
        """Embedded tier: the broker's side, once the broker runs (see DeferredGatewayAccess)."""
        if not isinstance(self._access, DeferredGatewayAccess):
            raise TypeError("this platform's gateway access is not deferred")
        self._access.target = access

    def verify(self, username: str, secret: str) -> frozenset[str] | None:
        """Broker login check (embedded tier): the gateway's VINs, or None if refused."""
        brand, _, name = username.removeprefix(GATEWAY_PREFIX).partition(".")
        if not username.startswith(GATEWAY_PREFIX) or not brand or not name or not secret:
            return None
        stored = self._store.secret_digest(brand, name)
        if stored is None or not matches(secret, stored):
            return None
        found = self._store.gateway_by_name(brand, name)
        return None if found is None else self._store.granted(found.id)

    def _push(self, gateway: Gateway) -> Gateway:
        """Hand the gateway's whole VIN set to the broker (it replaces the previous one)."""
        self._access.set_gateway(
            gateway_username(gateway.brand, gateway.name), None, self._store.granted(gateway.id)
        )
        updated = self._store.gateway(gateway.id)
        if updated is None:
            raise NotFound(f"gateway {gateway.id} not found")
        return updated

    @staticmethod
    def _checked(vins: list[str]) -> list[str]:
        if not vins:
            raise InvalidInput("give at least one VIN")
        if len(vins) > MAX_GRANTS_PER_CALL:
            raise InvalidInput(
                f"at most {MAX_GRANTS_PER_CALL:,} VINs per call, got {len(vins):,}: split the list"
            )
        return list(dict.fromkeys(validate_vin(v) for v in vins))


class DeferredGatewayAccess:
    """`GatewayAccess` whose broker side exists only once the broker runs (embedded tier).

    Before that there is nothing to update: the embedded broker asks the registry for a
    gateway's VINs when it connects.
    """

    def __init__(self) -> None:
        self.target: GatewayAccess | None = None

    def set_gateway(self, username: str, secret: str | None, vins: frozenset[str]) -> None:
        if self.target is not None:
            self.target.set_gateway(username, secret, vins)

    def remove_gateway(self, username: str) -> None:
        if self.target is not None:
            self.target.remove_gateway(username)
