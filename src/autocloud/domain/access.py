"""Who may do what: roles and tenant scopes of API callers.

A principal has a role and a scope: one brand (a tenant) or the whole group (`brand is
None`). Anything outside a principal's scope is reported as not found, so a brand's token
cannot even learn that another brand's vehicle exists.
"""

import enum
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

    @property
    def is_group(self) -> bool:
        return self.brand is None

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
