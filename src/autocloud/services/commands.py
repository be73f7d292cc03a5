"""Remote commands: who may send what to which vehicle, and what happens to it.

`submit` checks, in order: the command and its parameters (the table in domain/commands.py),
the vehicle in the caller's tenant (an owner's token: only the owner's vehicles), the caller's
right to send this command, the idempotency key (a retried call returns the first command),
the rate limits per vehicle and per caller, and the safety interlocks against the twin. Then
it stores the command `queued`, writes the desired state into the twin, and sends it at once
if the vehicle is online — otherwise it waits until the vehicle comes back (see
`command_delivery.Delivery`) or expires. Every step is in the audit log.

`submit_signed` takes a command an owner's app signed itself with a key enrolled for the
vehicle: the platform checks the signature against that key and applies the same gate
(`command_gate`), then forwards the app's signature and counter unchanged; the vehicle
verifies it against the same key.
"""

import uuid
from collections.abc import Callable, Mapping

from autocloud.domain.access import Principal, Role
from autocloud.domain.clock import Clock
from autocloud.domain.command_records import (
    AuditEntry,
    Command,
    VehicleKey,
)
from autocloud.domain.command_signing import (
    SignedCommand,
    Signer,
    authenticate,
    same_params,
)
from autocloud.domain.commands import (
    COMMANDS,
    MAX_EXPIRY_S,
    MIN_EXPIRY_S,
    TERMINAL,
    CommandSpec,
    State,
    spec_of,
)
from autocloud.domain.errors import Conflict, InvalidInput, NotFound, Refused
from autocloud.domain.records import Page, Vehicle
from autocloud.ports.commands import CommandStore
from autocloud.services.command_delivery import Delivery
from autocloud.services.command_gate import Gate, Limits, authorise, check_signed
from autocloud.services.command_keys import (
    app_key,
    ended_audit,
    enrol,
    permitted,
    revocable,
    revoked_audit,
)
from autocloud.services.registry import RegistryService, cursor_of, parse_cursor

MAX_WAIT_S = 60.0
PLATFORM_KEY_LABEL = "platform"


class CommandService:
    def __init__(
        self,
        store: CommandStore,
        registry: RegistryService,
        delivery: Delivery,
        signer: Signer,
        clock: Clock,
        limits: Limits,
    ) -> None:
        self._store = store
        self._registry = registry
        self.delivery = delivery
        self._signer = signer
        self._clock = clock
        self._gate = Gate(store, limits)

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
        authorise(who, spec)
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
        online = self._gate.admit(who, vehicle, spec, checked, now)
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
        try:
            return self._enqueue(who, spec, command, online, f"params {checked}"), True
        except Conflict:
            if idempotency_key is None:
                raise
            first = self._store.by_idempotency(vehicle.brand, who.name, idempotency_key)
            if first is None:
                raise
            return _same_request(first, vehicle, name, checked), False

    def submit_signed(
        self, who: Principal, vin: str, signed: SignedCommand
    ) -> tuple[Command, bool]:
        """Forward a command an app signed with a key enrolled for the vehicle (an owner's:
        their own key); (the command, whether it is new). Sending the same signed command
        again returns the first one; the vehicle verifies the app's signature itself."""
        spec = spec_of(signed.name)
        vehicle = self._registry.vehicle(who, vin)
        authorise(who, spec)
        now = self._clock.now_ms()
        checked = check_signed(signed, vehicle, spec.validate(signed.params), now)
        key = app_key(who, self._store.keys(vehicle.id), signed.kid, self._signer.kid)
        try:
            permitted(key, spec.name)  # the car refuses it too: its key list has the role
        except Refused as exc:
            detail = f"{exc.reason}: {exc}"
            self._store.audit(
                AuditEntry(
                    now, who.name, "refused", detail, vehicle.brand, vehicle.vin, None, spec.name
                )
            )
            raise
        if authenticate(signed, {key.kid: key.public_key}) is not None:
            raise InvalidInput(f"the signature does not hold for key {key.kid} over these fields")
        first = self._store.get(signed.id)
        if first is not None:
            if (first.vehicle_id, first.kid, first.sig) != (vehicle.id, signed.kid, signed.sig):
                raise Conflict("a command with this id exists already; sign each with a new id")
            return first, False
        online = self._gate.admit(who, vehicle, spec, checked, now)
        command = Command(
            id=signed.id,
            vehicle_id=vehicle.id,
            vin=vehicle.vin,
            brand=vehicle.brand,
            name=signed.name,
            params=checked,
            state=State.QUEUED,
            caller=who.name,
            owner_id=who.owner_id,
            issued_ms=signed.issued,
            expires_ms=signed.expires,
            queued_ms=now,
            counter=signed.counter,
            kid=signed.kid,
            sig=signed.sig,
        )
        detail = f"params {checked}, signed by app key {signed.kid}, counter {signed.counter}"
        return self._enqueue(who, spec, command, online, detail), True

    def _enqueue(
        self, who: Principal, spec: CommandSpec, command: Command, online: bool, detail: str
    ) -> Command:
        """Store a command that passed the gate with the desired state it implies, and send
        it at once when the vehicle is online."""
        audit = AuditEntry(
            command.queued_ms,
            who.name,
            State.QUEUED.value,
            detail,
            command.brand,
            command.vin,
            command.id,
            command.name,
        )
        # The desired state goes in with the command (one commit): a result, even one that
        # comes at once, finds it there, and a failure, rejection or expiry takes it back.
        wanted = spec.desired_state(command.params)
        if online:
            return self.delivery.send_new(command, audit, wanted)
        command = self._store.add(command, audit, desired=wanted)
        self.delivery.changed([command])
        return command

    # --- reading ---------------------------------------------------------------------------
    def get(self, who: Principal, command_id: str) -> Command:
        found = self._store.get(command_id) if len(command_id) <= 64 else None
        if found is None or not who.sees(found.brand):
            raise NotFound("command not found")
        if who.owner_id is None:
            return found  # a vehicle never changes tenant, and its commands are deleted with it
        try:
            self._registry.vehicle(who, found.vin)  # an owner sees their vehicles' only
        except NotFound:
            raise NotFound("command not found") from None
        return found

    def wait(self, who: Principal, command_id: str, timeout_s: float) -> Command:
        """The command once it has finished, or as it is after `timeout_s` (long poll)."""
        if timeout_s <= 0:
            return self.get(who, command_id)
        latest: list[Command] = []

        def finished() -> bool:
            # The first check reads the command and checks access; the later ones, after a
            # change, only re-read it. The waiter is registered before the first check, so
            # no change after that read is missed, and no read is made twice.
            if not latest:
                latest.append(self.get(who, command_id))
            else:
                latest[0] = self._store.get(command_id) or latest[0]
            return latest[0].state in TERMINAL

        self.delivery.wait(command_id, finished, min(timeout_s, MAX_WAIT_S))
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
        return VehicleKey(
            self._signer.kid, self._signer.public, PLATFORM_KEY_LABEL, 0, "platform", platform=True
        )

    def keys(self, who: Principal, vin: str) -> list[VehicleKey]:
        """The public keys the vehicle trusts: the platform's, then enrolled app keys."""
        vehicle = self._registry.vehicle(who, vin)
        return [self.platform_key(), *self._store.keys(vehicle.id)]

    def add_key(self, who: Principal, vin: str, public_key: str, label: str) -> VehicleKey:
        """Enrol an app's public key with a vehicle (an operator, or the vehicle's owner)."""
        vehicle = self._registry.vehicle(who, vin)
        now = self._clock.now_ms()
        added = enrol(self._store, self._signer.kid, who, vehicle, public_key, label, now)
        self.delivery.publish_keys(vehicle.id)  # the car learns it without a new provisioning
        return added

    def remove_key(self, who: Principal, vin: str, kid: str) -> None:
        """Revoke an app key of a vehicle (an operator or admin: any; an owner: their own).
        Its open commands expire, and the car gets a key list without it."""
        vehicle = self._registry.vehicle(who, vin)
        kid = revocable(who, self._store.keys(vehicle.id), kid, self._signer.kid)
        self._revoke(vehicle, [kid], who.name, "revoked")

    def owner_leaving(self, vehicle: Vehicle, owner_id: int, caller: str) -> None:
        """Registry hook, before and after an owner is detached from a vehicle (sold): the
        keys that owner enrolled with it are revoked."""
        kids = [k.kid for k in self._store.keys(vehicle.id) if k.owner_id == owner_id]
        self._revoke(vehicle, kids, caller, f"owner {owner_id} detached from the vehicle")

    def vehicle_removing(self, vehicle_id: int) -> Callable[[], None]:
        """Registry hook, before a vehicle is deleted (its keys and counters go with it):
        after the delete, the retained key list is taken back from the broker."""
        vin = self._store.vin_of(vehicle_id)
        return lambda: None if vin is None else self.delivery.clear_keys(vin)

    def _revoke(self, vehicle: Vehicle, kids: list[str], caller: str, why: str) -> None:
        if not kids:
            return
        now = self._clock.now_ms()
        gone, ended = self._store.remove_keys(
            vehicle.id,
            kids,
            revoked_audit(caller, vehicle, now, why),
            ended_audit(caller, now, ", ".join(kids)),
        )
        self.delivery.changed(ended)
        if gone:
            self.delivery.publish_keys(vehicle.id)


def _same_request(
    first: Command, vehicle: Vehicle, name: str, params: Mapping[str, object]
) -> Command:
    if (
        first.vehicle_id != vehicle.id
        or first.name != name
        or not same_params(first.params, params)
    ):
        raise Conflict(
            "this idempotency key was used for a different command; use a new key per command"
        )
    return first


__all__ = ["MAX_WAIT_S", "CommandService", "Limits"]
