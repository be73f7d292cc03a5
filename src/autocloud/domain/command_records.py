"""Plain values of remote commands: a command with its timings, an audit entry, a key."""

from dataclasses import dataclass, field
from typing import Any

from autocloud.domain.command_keyset import KeyEntry, KeyRole
from autocloud.domain.commands import State

# A command that ends without being carried out takes back the desired state it wrote, so
# the twin does not show those signals as pending for ever (`succeeded` leaves it: the
# vehicle's next report matches it and the signal stops being pending).
UNDONE = frozenset({State.FAILED, State.REJECTED, State.EXPIRED})


def desired_by(command_id: str) -> str:
    """The `set_by` of the desired values a command writes into the twin."""
    return f"command {command_id}"


@dataclass(frozen=True, slots=True)
class Command:
    """One command and where it is in its lifecycle (times in ms since the epoch)."""

    id: str
    vehicle_id: int
    vin: str
    brand: str
    name: str
    params: dict[str, Any]
    state: State
    caller: str
    issued_ms: int
    expires_ms: int
    queued_ms: int
    owner_id: int | None = None
    idempotency_key: str | None = None
    reason: str | None = None
    result: dict[str, Any] = field(default_factory=dict)
    counter: int | None = None
    kid: str | None = None
    sig: str | None = None
    sent_ms: int | None = None
    delivered_ms: int | None = None
    finished_ms: int | None = None
    row: int = 0


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """Who did what to which command, when, and how it ended."""

    at_ms: int
    caller: str
    action: str
    detail: str
    brand: str | None = None
    vin: str | None = None
    command_id: str | None = None
    name: str | None = None
    row: int = 0


@dataclass(frozen=True, slots=True)
class VehicleKey:
    """A public key a vehicle is enrolled with (the platform's, or an app's).

    Its role (what it may sign) follows from who it belongs to: the platform's key, an
    owner's app key (`owner_id`), or an app key an operator or admin enrolled.
    """

    kid: str
    public_key: bytes
    label: str
    added_ms: int
    added_by: str
    owner_id: int | None = None
    platform: bool = False

    @property
    def role(self) -> KeyRole:
        if self.platform:
            return KeyRole.PLATFORM
        return KeyRole.OWNER if self.owner_id is not None else KeyRole.OPERATOR

    def entry(self) -> KeyEntry:
        """The key as a vehicle learns it (in a key list or at provisioning)."""
        return KeyEntry(self.kid, self.public_key.hex(), self.role)
