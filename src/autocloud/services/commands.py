"""Remote commands: who may send what to which vehicle, and what happens to it.

`submit` checks, in order: the command and its parameters (the table in domain/commands.py),
the vehicle in the caller's tenant (an owner's token: only the owner's vehicles), the caller's
right to send this command, the idempotency key (a retried call returns the first command),
the rate limits per vehicle and per caller, and the safety interlocks against the twin. Then
it stores the command `queued`, writes the desired state into the twin, and sends it at once
if the vehicle is online — otherwise it waits until the vehicle comes back (see
`command_delivery.Delivery`) or expires. Every step is in the audit log.
"""

import uuid
from collections.abc import Mapping
from dataclasses import dataclass

from autocloud.domain.access import Principal, Role
from autocloud.domain.clock import Clock
from autocloud.domain.command_records import (
    UNDONE,
    AuditEntry,
    Command,
    VehicleKey,
    desired_by,
)
from autocloud.domain.command_signing import Signer, key_id, parse_public_key
from autocloud.domain.commands import (
    COMMANDS,
    MAX_EXPIRY_S,
    MIN_EXPIRY_S,
    TERMINAL,
    CommandSpec,
    State,
    spec_of,
)
from autocloud.domain.errors import (
    Conflict,
    Forbidden,
    InvalidInput,
    NotFound,
    RateLimited,
    Refused,
)
from autocloud.domain.ratelimit import TokenBuckets
from autocloud.domain.records import Page, Vehicle
from autocloud.ports.commands import CommandStore
from autocloud.ports.stores import TelemetryReader
from autocloud.services.command_delivery import Delivery
from autocloud.services.registry import RegistryService, cursor_of, parse_cursor

MAX_WAIT_S = 60.0
PLATFORM_KEY_LABEL = "platform"


@dataclass(frozen=True, slots=True)
class Limits:
    """Settings the service applies (from `Settings.command_*`)."""

    min_soc_pct: float = 20.0
    per_vehicle_per_min: int = 30
    per_caller_per_min: int = 600


class CommandService:
    def __init__(
        self,
        store: CommandStore,
        registry: RegistryService,
        twins: TelemetryReader,
        delivery: Delivery,
        signer: Signer,
        clock: Clock,
        limits: Limits,
    ) -> None:
        self._store = store
        self._registry = registry
        self._twins = twins
        self.delivery = delivery
        self._signer = signer
        self._clock = clock
        self._limits = {"command_min_soc_pct": limits.min_soc_pct}
        rate_v, rate_c = limits.per_vehicle_per_min, limits.per_caller_per_min
        self._per_vehicle = TokenBuckets(rate_v, rate_v)
        self._per_caller = TokenBuckets(rate_c, rate_c)

    @staticmethod
    def catalog() -> tuple[CommandSpec, ...]:
        return COMMANDS

    # --- sending ---------------------------------------------------------------------------
    def submit(
        self,
        who: Principal,
        vin: str,
        name: str,
        params: Mapping[str, object] | None = None,
        *,
        idempotency_key: str | None = None,
        expires_in_s: int | None = None,
    ) -> tuple[Command, bool]:
        """Send command `name` to `vin`; (the command, whether it is new)."""
        spec = spec_of(name)
        vehicle = self._registry.vehicle(who, vin)
        _authorise(who, spec, vehicle)
        checked = spec.validate(params)
        if idempotency_key is not None:
            if not 0 < len(idempotency_key) <= 200:
                raise InvalidInput("an idempotency key has 1 to 200 characters")
            first = self._store.by_idempotency(vehicle.brand, who.name, idempotency_key)
            if first is not None:
                return _same_request(first, vehicle, name, checked), False
        lifetime = spec.timeout_s if expires_in_s is None else expires_in_s
        if not MIN_EXPIRY_S <= lifetime <= MAX_EXPIRY_S:
            raise InvalidInput(f"expires_in_s must be between {MIN_EXPIRY_S} and {MAX_EXPIRY_S}")
        now = self._clock.now_ms()
        self._rate_limit(who, vehicle, now)
        twin = self._twins.twin(vehicle)
        refusal = spec.refusal({s.path: s.value for s in twin.reported}, self._limits)
        if refusal is not None:
            reason, message = refusal
            self._store.audit(
                AuditEntry(
                    now,
                    who.name,
                    "refused",
                    f"{reason}: {message}",
                    vehicle.brand,
                    vehicle.vin,
                    None,
                    name,
                )
            )
            raise Refused(reason, f"{name} {message}")
        command = Command(
            id=uuid.uuid4().hex,
            vehicle_id=vehicle.id,
            vin=vehicle.vin,
            brand=vehicle.brand,
            name=name,
            params=checked,
            state=State.QUEUED,
            caller=who.name,
            owner_id=who.owner_id,
            idempotency_key=idempotency_key,
            issued_ms=now,
            expires_ms=now + lifetime * 1000,
            queued_ms=now,
        )
        audit = AuditEntry(
            now,
            who.name,
            State.QUEUED.value,
            f"params {checked}",
            vehicle.brand,
            vehicle.vin,
            command.id,
            name,
        )
        try:
            command = self._store.add(command, audit)
        except Conflict:
            if idempotency_key is None:
                raise
            first = self._store.by_idempotency(vehicle.brand, who.name, idempotency_key)
            if first is None:
                raise
            return _same_request(first, vehicle, name, checked), False
        self.delivery.changed([command])
        if twin.online:
            command = self.delivery.send(command)
        # After sending (off the vehicle's path): `pending` is worked out when the twin is
        # read, so a report that arrives before these writes is still compared with them.
        wanted = spec.desired_state(checked)
        if wanted:
            self._twins.set_desired_many(vehicle.id, wanted, now, desired_by(command.id))
            # A failure, rejection or expiry clears these values in its own transaction; one
            # that was written before them (a fast rejection) is seen here instead.
            latest = self._store.get(command.id)
            if latest is not None and latest.state in UNDONE:
                self._store.clear_desired(command.id)
        return command, True

    def _rate_limit(self, who: Principal, vehicle: Vehicle, now: int) -> None:
        caller = (vehicle.brand if who.brand is None else who.brand, who.name)
        for buckets, key, what in (
            (self._per_vehicle, vehicle.id, "this vehicle"),
            (self._per_caller, caller, "this token"),
        ):
            wait = buckets.wait_s(key, now)
            if wait > 0:
                raise RateLimited(
                    f"too many commands for {what} ({buckets.rate_per_min:g} a minute); "
                    f"retry in {wait:.0f} s",
                    wait,
                )
        self._per_vehicle.take(vehicle.id, now)
        self._per_caller.take(caller, now)

    # --- reading ---------------------------------------------------------------------------
    def get(self, who: Principal, command_id: str) -> Command:
        found = self._store.get(command_id) if len(command_id) <= 64 else None
        if found is None or not who.sees(found.brand):
            raise NotFound("command not found")
        try:
            self._registry.vehicle(who, found.vin)  # an owner sees their vehicles' only
        except NotFound:
            raise NotFound("command not found") from None
        return found

    def wait(self, who: Principal, command_id: str, timeout_s: float) -> Command:
        """The command once it has finished, or as it is after `timeout_s` (long poll)."""
        command = self.get(who, command_id)
        if command.state in TERMINAL or timeout_s <= 0:
            return command
        latest = [command]

        def finished() -> bool:
            latest[0] = self._store.get(command_id) or latest[0]
            return latest[0].state in TERMINAL

        self.delivery.wait(finished, min(timeout_s, MAX_WAIT_S))
        return latest[0]

    def find(
        self,
        who: Principal,
        *,
        vin: str | None = None,
        brand: str | None = None,
        state: str | None = None,
        cursor: str | None = None,
        limit: int = 100,
    ) -> Page:
        scope = who.scope(brand)
        vehicle_id = self._registry.vehicle(who, vin).id if vin else None
        try:
            wanted = State(state) if state else None
        except ValueError:
            raise InvalidInput(
                f"state {state!r} is not one of: {', '.join(s.value for s in State)}"
            ) from None
        vins = who.vin_filter if vehicle_id is None else None  # an owner: the owner's cars
        before = parse_cursor(cursor) or None
        items = self._store.find(
            scope, vehicle_id=vehicle_id, state=wanted, vins=vins, before=before, limit=limit
        )
        return Page(tuple(items), cursor_of(items[-1].row if len(items) == limit else None))

    def audit_log(
        self,
        who: Principal,
        *,
        vin: str | None = None,
        command_id: str | None = None,
        brand: str | None = None,
        since: int = 0,
        until: int = 2**62,
        cursor: str | None = None,
        limit: int = 1000,
    ) -> Page:
        """Who did what, when, with which outcome (operators and admins of the tenant)."""
        who.require(Role.OPERATOR)
        scope = who.scope(brand)
        if vin:
            vin = self._registry.vehicle(who, vin).vin
        items = self._store.audit_log(
            scope,
            vin=vin,
            command_id=command_id,
            since=since,
            until=until,
            after=parse_cursor(cursor),
            limit=limit,
        )
        return Page(tuple(items), cursor_of(items[-1].row if len(items) == limit else None))

    # --- keys ------------------------------------------------------------------------------
    def platform_key(self) -> VehicleKey:
        return VehicleKey(self._signer.kid, self._signer.public, PLATFORM_KEY_LABEL, 0, "platform")

    def keys(self, who: Principal, vin: str) -> list[VehicleKey]:
        """The public keys the vehicle trusts: the platform's, then enrolled app keys."""
        vehicle = self._registry.vehicle(who, vin)
        return [self.platform_key(), *self._store.keys(vehicle.id)]

    def add_key(self, who: Principal, vin: str, public_key: str, label: str) -> VehicleKey:
        """Enrol an app's public key with a vehicle (an operator, or the vehicle's owner)."""
        vehicle = self._registry.vehicle(who, vin)
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
        if kid == self._signer.kid:
            raise Conflict("this is the platform's own key")
        now = self._clock.now_ms()
        key = VehicleKey(kid, raw, label, now, who.name, who.owner_id)
        added = self._store.add_key(vehicle.id, key)
        self._store.audit(
            AuditEntry(now, who.name, "key_added", f"{kid} ({label})", vehicle.brand, vehicle.vin)
        )
        return added


def _authorise(who: Principal, spec: CommandSpec, vehicle: Vehicle) -> None:
    """An owner may send the commands marked for owners (to their vehicles, checked by the
    registry lookup); anyone else needs the command's role."""
    if who.owner_id is not None:
        if not spec.owner_may:
            raise Forbidden(f"{spec.name} is not a command an owner may send")
        return
    who.require(spec.min_role)


def _same_request(
    first: Command, vehicle: Vehicle, name: str, params: Mapping[str, object]
) -> Command:
    if first.vehicle_id != vehicle.id or first.name != name or first.params != dict(params):
        raise Conflict(
            "this idempotency key was used for a different command; use a new key per command"
        )
    return first
