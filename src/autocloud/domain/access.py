"""Who may do what: roles and tenant scopes of API callers.

A principal has a role and a scope: one brand (a tenant) or the whole group (`brand is
None`). Anything outside a principal's scope is reported as not found, so a brand's token
cannot even learn that another brand's vehicle exists.

An owner's token (`owner_id`) is narrower still: it sees only the vehicles attached to
that owner (`vins`, looked up when the token is authenticated), and may call only the routes
in `OWNER_ROUTES` (deny by default: brand-level routes such as dead letters, tokens,
webhooks, alert rules and gateways are refused, and a new route stays closed to owners until
it is listed here with its owner filtering in place). Alerts are open to owners, filtered to
their vehicles; the rules that raise them stay the brand operators' (`OWNER_HINTS` says so in
the refusal).
"""

import enum
from collections.abc import Collection
from dataclasses import dataclass

from autocloud.domain.errors import Forbidden, NotFound


class Role(enum.IntEnum):
    """Roles in increasing power; each includes the rights of those below it."""

    VIEWER = 1
    OPERATOR = 2
    ADMIN = 3

    @classmethod
    def parse(cls, name: str) -> "Role":
        try:
            return cls[name.upper()]
        except KeyError:
            allowed = ", ".join(r.name.lower() for r in cls)
            raise ValueError(f"unknown role {name!r}; use one of: {allowed}") from None


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated API caller."""

    name: str
    role: Role
    brand: str | None  # None: the whole group
    owner_id: int | None = None  # an owner's token: sees and commands that owner's vehicles
    vins: frozenset[str] | None = None  # an owner's token: the VINs attached to the owner

    @property
    def is_group(self) -> bool:
        return self.brand is None

    @property
    def vin_filter(self) -> frozenset[str] | None:
        """The VINs a list may show: None when not limited (any token but an owner's)."""
        if self.owner_id is None:
            return None
        return self.vins or frozenset()

    def sees_vehicle(self, brand: str | None, owners: Collection[int]) -> bool:
        """Whether a vehicle of `brand` attached to `owners` is inside this principal's
        scope (an owner's token: only vehicles attached to that owner)."""
        return self.sees(brand) and (self.owner_id is None or self.owner_id in owners)

    def check_route(self, method: str, path: str) -> None:
        """Raise Forbidden when an owner's token calls a route not open to owners."""
        if self.owner_id is None:
            return
        verb = "GET" if method.upper() == "HEAD" else method.upper()
        if (verb, path) not in OWNER_ROUTES:
            hint = next((h for p, h in OWNER_HINTS.items() if path.startswith(p)), None)
            raise Forbidden(
                f"an owner's token may not use {verb} {path}; it reads and commands "
                f"the owner's own vehicles only{'; ' + hint if hint else ''}"
            )

    def require(self, role: Role) -> None:
        """Raise Forbidden unless this principal has at least `role`."""
        if self.role < role:
            raise Forbidden(
                f"this action needs the {role.name.lower()} role; "
                f"the token {self.name!r} has {self.role.name.lower()}"
            )

    def sees(self, brand: str | None) -> bool:
        """Whether a thing of `brand` is inside this principal's scope."""
        return self.brand is None or self.brand == brand

    def check_brand(self, brand: str | None, what: str) -> None:
        """Raise NotFound (never Forbidden, to leak nothing) when `brand` is out of scope."""
        if not self.sees(brand):
            raise NotFound(f"{what} not found")

    def scope(self, requested: str | None) -> str | None:
        """The brand filter to apply: the principal's own brand, or the group's choice."""
        if self.brand is None:
            return requested
        if requested is not None and requested != self.brand:
            raise NotFound(f"brand {requested!r} not found")
        return self.brand


# Routes an owner's token may call: each reads or commands only the owner's vehicles (a
# `{vin}` is checked against them; lists are filtered with `Principal.vin_filter`).
OWNER_ROUTES: frozenset[tuple[str, str]] = frozenset(
    {
        ("GET", "/v1/brands"),
        ("GET", "/v1/signals"),
        ("GET", "/v1/vehicles"),
        ("GET", "/v1/vehicles/{vin}"),
        ("GET", "/v1/vehicles/{vin}/twin"),
        ("GET", "/v1/vehicles/{vin}/history"),
        ("GET", "/v1/vehicles/{vin}/health"),
        ("GET", "/v1/vehicles/{vin}/diagnostics"),
        ("GET", "/v1/vehicles/{vin}/diagnostics/{session_id}"),
        ("GET", "/v1/vehicles/{vin}/commands"),
        ("POST", "/v1/vehicles/{vin}/commands"),
        ("POST", "/v1/vehicles/{vin}/commands/signed"),
        ("GET", "/v1/vehicles/{vin}/keys"),
        ("POST", "/v1/vehicles/{vin}/keys"),
        ("DELETE", "/v1/vehicles/{vin}/keys/{kid}"),
        ("GET", "/v1/vehicles/{vin}/key-list"),
        ("GET", "/v1/fleet"),
        ("GET", "/v1/fleet/health"),
        ("GET", "/v1/fleet/positions"),
        ("GET", "/v1/stream"),
        ("GET", "/v1/commands"),
        ("GET", "/v1/commands/catalog"),
        ("GET", "/v1/commands/{command_id}"),
        ("GET", "/v1/alerts"),
        ("GET", "/v1/alerts/{alert_id}"),
        ("POST", "/v1/alerts/{alert_id}/ack"),
    }
)

# Why a route is closed to owners, where the plain refusal would leave them guessing.
OWNER_HINTS: dict[str, str] = {
    "/v1/alert-rules": "alert rules are set by the brand's operators; an owner sees and "
    "acknowledges the alerts of their own vehicles at /v1/alerts",
}
