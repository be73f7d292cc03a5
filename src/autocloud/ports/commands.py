"""The store of remote commands (adapter: `adapters/sql/commands.py`, contract tests in
`tests/contract/test_commands_contract.py`).

State changes are conditional: `move` changes a command only from a state the lifecycle
allows, so the API, the expiry timer and ingest (vehicle results) can race without ever
breaking the lifecycle.
"""

from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from autocloud.domain.command_records import AuditEntry, Command, VehicleKey
from autocloud.domain.commands import State
from autocloud.domain.records import Value


@dataclass(frozen=True, slots=True)
class Sending:
    """How a store marks a command sent: sign it with the next counter of (vehicle, `kid`)
    (`sign(counter) -> sig`), or, with `sign` None, keep the signature an app gave it. The
    audit entry's detail gets the counter appended when the store signs."""

    now_ms: int
    audit: AuditEntry
    kid: str | None = None
    sign: Callable[[int], str] | None = None


# Hands a command just marked sent to the broker. The store calls it after the commit and
# before it lets go of the vehicle's send lock, so counters reach the broker in order even
# from two platform processes (see `adapters/sql/command_keys.vehicle_lock`).
Publish = Callable[[Command], None]


class CommandStore(Protocol):
    def add(
        self,
        command: Command,
        audit: AuditEntry,
        sending: Sending | None = None,
        desired: Mapping[str, Value] | None = None,
        publish: Publish | None = None,
    ) -> Command:
        """Store a new command, its audit entry and the desired state it implies in the
        twin (`set_by` "command <id>"); with `sending`, also mark it sent: all in one
        transaction (one commit before `publish`, which runs under the vehicle's send lock).
        Conflict on a reused idempotency key."""
        ...

    def get(self, command_id: str) -> Command | None: ...
    def interlock_view(
        self, vehicle_id: int, paths: Collection[str]
    ) -> tuple[bool, dict[str, Value]]:
        """Whether the vehicle is online, and the twin's reported values of these signals
        (a signal it has not reported is left out): what the command gate checks, read
        without the rest of the twin."""
        ...

    def by_idempotency(self, brand: str, caller: str, key: str) -> Command | None: ...
    def by_ids(self, ids: Iterable[str]) -> list[Command]: ...
    def find(
        self,
        scope: str | None,
        *,
        vehicle_id: int | None,
        state: State | None,
        vins: Collection[str] | None,
        before: int | None,
        limit: int,
    ) -> list[Command]:
        """Newest first; `before` is the row of the last command of the previous page;
        `vins`: only commands to these vehicles (an owner's token), None: any."""
        ...

    def waiting(self, vehicle_id: int) -> list[Command]:
        """Open commands not yet delivered (queued or sent), oldest first."""
        ...

    def next_counter(self, vehicle_id: int, kid: str) -> int:
        """Reserve and return the next signing counter of (vehicle, key), starting at 1."""
        ...

    def mark_sent(
        self, command_id: str, sending: Sending, publish: Publish | None = None
    ) -> Command | None:
        """In one transaction: sign as `sending` says (the next counter of the vehicle and
        key) and move the queued command to sent; then `publish` it, still under the
        vehicle's send lock. None when it was no longer queued."""
        ...

    def move(
        self, command_id: str, target: State, now_ms: int, audit: AuditEntry, **fields: Any
    ) -> Command | None:
        """Move the command to `target` if the lifecycle allows it from its current state;
        write `fields` (counter, kid, sig, reason, result) with it. None when refused. A
        move to failed, rejected or expired clears the desired values the command set."""
        ...

    def due(self, now_ms: int, limit: int) -> list[Command]:
        """Open commands whose expiry has passed."""
        ...

    def audit(self, entry: AuditEntry) -> None: ...
    def audit_log(
        self,
        scope: str | None,
        *,
        vin: str | None,
        command_id: str | None,
        since: int,
        until: int,
        after: int,
        limit: int,
    ) -> list[AuditEntry]: ...
    def add_key(self, vehicle_id: int, key: VehicleKey) -> VehicleKey: ...
    def keys(self, vehicle_id: int) -> list[VehicleKey]: ...
    def remove_keys(
        self,
        vehicle_id: int,
        kids: Collection[str],
        audit: Callable[[VehicleKey], AuditEntry],
        ended: Callable[[Command], AuditEntry],
    ) -> tuple[list[VehicleKey], list[Command]]:
        """In one transaction: delete these keys of the vehicle (an audit entry each) and
        expire its open commands they signed (`ended` gives each one's audit entry; its
        detail is the reason). The keys removed and the commands ended."""
        ...

    def vin_of(self, vehicle_id: int) -> str | None: ...
    def key_list(
        self, vehicle_id: int, publish: Callable[[str, int, list[VehicleKey]], None]
    ) -> int | None:
        """Take the next serial of the vehicle's key list with its current keys, commit, and
        call `publish(vin, serial, keys)` under the vehicle's send lock; the serial, or None
        when the vehicle is gone."""
        ...
