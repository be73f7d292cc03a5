"""Provisioning: brands (tenants), vehicles with their broker credential, owners, API tokens.

Every call takes the calling principal and applies its role and tenant scope, so the API
and the CLI cannot forget a check.
"""

import re
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace

from autocloud.domain.access import Principal, Role
from autocloud.domain.clock import Clock
from autocloud.domain.errors import InvalidInput, NotFound, Unauthorized
from autocloud.domain.records import Brand, Owner, Page, TokenInfo, Vehicle
from autocloud.domain.secrets import digest, matches, new_secret, new_token
from autocloud.domain.vin import decode_vin, validate_vin
from autocloud.ports.link import VehicleAccess
from autocloud.ports.stores import Registry

BRAND_ID = re.compile(r"^[a-z0-9][a-z0-9-]{0,63}$")
MAX_ID = 2**63 - 1  # the largest row id or cursor any SQL store can compare against
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
OWNED_TTL_S = 2.0  # how long an owner's VIN list is reused (attach/detach here drop it at once)


@dataclass(frozen=True, slots=True)
class Provisioned:
    """A new vehicle and its broker secret; the secret is shown once and never stored."""

    vehicle: Vehicle
    secret: str


def cursor_of(last_id: int | None) -> str | None:
    return None if last_id is None else str(last_id)


def parse_cursor(cursor: str | None) -> int:
    if not cursor:
        return 0
    if not cursor.isdigit() or int(cursor) > MAX_ID:
        raise InvalidInput(f"cursor {cursor!r} is not one this API returned")
    return int(cursor)


class RegistryService:
    def __init__(self, registry: Registry, access: VehicleAccess, clock: Clock) -> None:
        self._registry = registry
        self._access = access
        self._clock = clock
        self._owned: dict[int, tuple[float, frozenset[str]]] = {}  # owner -> (until, VINs)
        self._owned_lock = threading.Lock()
        # Called with a vehicle's id before it is deleted; each returns what to run after the
        # delete (fleet gateways take the VIN out of their broker grants).
        self.before_remove: list[Callable[[int], Callable[[], None]]] = []
        # Called with (vehicle, owner id, caller name) before an owner is detached and again
        # after (an owner's app keys go with the ownership: services/commands.py).
        self.owner_leaving: list[Callable[[Vehicle, int, str], None]] = []

    # --- brands --------------------------------------------------------------------------
    def add_brand(self, who: Principal, brand_id: str, name: str) -> Brand:
        who.require(Role.ADMIN)
        if not who.is_group:
            raise NotFound("brands are created by a group admin")
        if not BRAND_ID.match(brand_id):
            raise InvalidInput(
                f"brand id {brand_id!r} must be lower-case letters, digits and '-', at most 64"
            )
        if not name.strip():
            raise InvalidInput("brand name must not be empty")
        return self._registry.add_brand(brand_id, name.strip(), self._clock.now_ms())

    def brands(self, who: Principal, brand: str | None = None) -> list[Brand]:
        return self._registry.brands(who.scope(brand))

    # --- vehicles ------------------------------------------------------------------------
    def add_vehicle(self, who: Principal, vin: str, brand: str, model: str = "") -> Provisioned:
        who.require(Role.OPERATOR)
        who.check_brand(brand, f"brand {brand!r}")
        decoded = decode_vin(vin)
        secret = new_secret()
        vehicle = self._registry.add_vehicle(
            Vehicle(
                id=0,
                vin=decoded.vin,
                brand=brand,
                model=model.strip(),
                model_year=decoded.model_year,
                manufacturer=decoded.manufacturer,
                created_ms=self._clock.now_ms(),
            ),
            digest(secret),
        )
        self._access.grant(vehicle.vin, secret)
        return Provisioned(vehicle, secret)

    def vehicle(self, who: Principal, vin: str) -> Vehicle:
        found = self._registry.vehicle(validate_vin(vin))
        if found is None or not who.sees_vehicle(found.brand, found.owners):
            # Same answer for "no such VIN" and "another tenant's VIN"; the VIN is not echoed,
            # so no response to a wrong-tenant request ever carries the other tenant's VIN.
            raise NotFound("vehicle not found: no vehicle with this VIN is visible to this token")
        return found

    def vehicles(
        self,
        who: Principal,
        *,
        brand: str | None,
        model: str | None,
        cursor: str | None,
        limit: int,
    ) -> Page:
        items = self._registry.vehicles(
            who.scope(brand),
            model=model,
            after=parse_cursor(cursor),
            limit=limit,
            vins=who.vin_filter,
        )
        last = items[-1].id if len(items) == limit else None
        return Page(tuple(items), cursor_of(last))

    def rotate_secret(self, who: Principal, vin: str) -> Provisioned:
        who.require(Role.OPERATOR)
        vehicle = self.vehicle(who, vin)
        secret = new_secret()
        self._registry.set_secret(vehicle.vin, digest(secret))
        self._access.grant(vehicle.vin, secret)
        return Provisioned(vehicle, secret)

    def remove_vehicle(self, who: Principal, vin: str) -> None:
        who.require(Role.ADMIN)
        vehicle = self.vehicle(who, vin)
        # Revoke before deleting (a failed delete leaves no open door) and again after (a
        # broker that checks the registry at connect may have let it back in meanwhile).
        self._access.revoke(vehicle.vin)
        after = [hook(vehicle.id) for hook in self.before_remove]
        self._registry.delete_vehicle(vehicle.vin)
        self._access.revoke(vehicle.vin)
        self._forget_owned(vehicle.owners)
        for done in after:
            done()

    def verify_vehicle(self, vin: str, secret: str) -> bool:
        """Broker login check (embedded tier): is `secret` this VIN's current credential?"""
        stored = self._registry.secret_digest(vin)
        return stored is not None and matches(secret, stored)

    # --- owners --------------------------------------------------------------------------
    def add_owner(self, who: Principal, brand: str, name: str, email: str) -> Owner:
        who.require(Role.OPERATOR)
        who.check_brand(brand, f"brand {brand!r}")
        if not EMAIL.match(email):
            raise InvalidInput(f"{email!r} is not an e-mail address")
        if not name.strip():
            raise InvalidInput("owner name must not be empty")
        return self._registry.add_owner(brand, name.strip(), email, self._clock.now_ms())

    def owners(self, who: Principal, *, brand: str | None, cursor: str | None, limit: int) -> Page:
        items = self._registry.owners(who.scope(brand), after=parse_cursor(cursor), limit=limit)
        last = items[-1].id if len(items) == limit else None
        return Page(tuple(items), cursor_of(last))

    def _owner(self, who: Principal, owner_id: int) -> Owner:
        owner = self._registry.owner(owner_id) if 0 < owner_id <= MAX_ID else None
        if owner is None or not who.sees(owner.brand):
            raise NotFound(f"owner {owner_id} not found")
        return owner

    def attach_owner(self, who: Principal, vin: str, owner_id: int) -> Vehicle:
        who.require(Role.OPERATOR)
        vehicle = self.vehicle(who, vin)
        owner = self._owner(who, owner_id)
        if owner.brand != vehicle.brand:
            raise InvalidInput(
                f"owner {owner_id} belongs to brand {owner.brand!r}, not {vehicle.brand!r}"
            )
        self._registry.attach_owner(vehicle.id, owner.id)
        self._forget_owned([owner.id])
        return self.vehicle(who, vin)

    def detach_owner(self, who: Principal, vin: str, owner_id: int) -> Vehicle:
        who.require(Role.OPERATOR)
        vehicle = self.vehicle(who, vin)
        self._owner(who, owner_id)
        for leaving in self.owner_leaving:  # first: a failure leaves the ownership as it was
            leaving(vehicle, owner_id, who.name)
        self._registry.detach_owner(vehicle.id, owner_id)
        self._forget_owned([owner_id])
        for leaving in self.owner_leaving:  # again: a key enrolled meanwhile goes too
            leaving(vehicle, owner_id, who.name)
        return self.vehicle(who, vin)

    # --- API tokens ----------------------------------------------------------------------
    def create_token(
        self,
        who: Principal,
        name: str,
        role: Role,
        brand: str | None,
        owner_id: int | None = None,
    ) -> tuple[TokenInfo, str]:
        """A new bearer token; a brand admin can only make tokens of its own brand."""
        who.require(Role.ADMIN)
        if owner_id is not None:
            brand = brand or self._owner(who, owner_id).brand
        if not who.is_group:
            if brand is None:
                brand = who.brand
            who.check_brand(brand, f"brand {brand!r}")
        return self.issue_token(name, role, brand, owner_id)

    def issue_token(
        self, name: str, role: Role, brand: str | None, owner_id: int | None = None
    ) -> tuple[TokenInfo, str]:
        """Bootstrap path (CLI on the server, first start): no caller to check.

        An owner's token (`owner_id`) is a viewer of the owner's brand that sees and
        commands only the owner's vehicles.
        """
        if owner_id is not None:
            owner = self._registry.owner(owner_id) if 0 < owner_id <= MAX_ID else None
            if owner is None:
                raise NotFound(f"owner {owner_id} not found")
            if role is not Role.VIEWER or brand not in (None, owner.brand):
                raise InvalidInput(
                    f"an owner's token has the viewer role and the owner's brand "
                    f"({owner.brand!r}); omit role and brand"
                )
            brand = owner.brand
        token = new_token()
        info = self._registry.add_token(
            name, digest(token), role.name.lower(), brand, self._clock.now_ms(), owner_id
        )
        return info, token

    def tokens(self, who: Principal, brand: str | None = None) -> list[TokenInfo]:
        who.require(Role.ADMIN)
        return self._registry.tokens(who.scope(brand))

    def revoke_token(self, who: Principal, token_id: int) -> None:
        who.require(Role.ADMIN)
        if not any(t.id == token_id for t in self._registry.tokens(who.brand)):
            raise NotFound(f"token {token_id} not found")
        self._registry.revoke_token(token_id, self._clock.now_ms())

    def authenticate(self, token: str) -> Principal:
        info = self._registry.token_by_digest(digest(token))
        if info is None or info.revoked_ms is not None:
            raise Unauthorized("the bearer token is unknown or revoked; ask an admin for a new one")
        who = Principal(info.name, Role.parse(info.role), info.brand, info.owner_id)
        if info.owner_id is not None:
            who = replace(who, vins=self.owned_vins(info.owner_id))
        return who

    def owned_vins(self, owner_id: int) -> frozenset[str]:
        """The VINs attached to an owner, reused for `OWNED_TTL_S` (every request of an
        owner's app needs them; a change made through this service is seen at once)."""
        now = time.monotonic()
        with self._owned_lock:
            cached = self._owned.get(owner_id)
        if cached is not None and cached[0] > now:
            return cached[1]
        vins = frozenset(self._registry.owned_vins(owner_id))
        with self._owned_lock:
            if len(self._owned) > 10_000:  # bound the cache: drop what has expired
                self._owned = {k: v for k, v in self._owned.items() if v[0] > now}
            self._owned[owner_id] = (now + OWNED_TTL_S, vins)
        return vins

    def _forget_owned(self, owner_ids: Iterable[int]) -> None:
        with self._owned_lock:
            for owner_id in owner_ids:
                self._owned.pop(owner_id, None)
