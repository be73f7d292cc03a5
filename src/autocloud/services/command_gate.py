"""The checks every new command passes before it is stored, whoever signed it.

What: the caller's right to send the command (its minimum role; an owner's token only the
commands marked for owners), the rate limits per vehicle and per calling token (token
buckets), and the safety interlocks against the twin's last reported values (a refusal is
written to the audit log and raised as `Refused` with its machine-readable reason). Only the
signals the command's interlocks name are read, with the vehicle's presence
(`CommandStore.interlock_view`), not the whole twin: this runs for every command.

Why a module of its own: commands the platform signs (`CommandService.submit`) and commands
an owner's app signed itself (`CommandService.submit_signed`) must pass exactly the same
gate; the vehicle checks its own state again when the command arrives.
"""

import re
from collections.abc import Mapping
from dataclasses import dataclass

from autocloud.domain.access import Principal
from autocloud.domain.command_records import AuditEntry
from autocloud.domain.command_signing import SIGNED_VERSION, SignedCommand, same_params
from autocloud.domain.commands import MAX_EXPIRY_S, CommandSpec
from autocloud.domain.errors import Forbidden, InvalidInput, RateLimited, Refused
from autocloud.domain.ratelimit import TokenBuckets
from autocloud.domain.records import Vehicle
from autocloud.ports.commands import CommandStore

MAX_COUNTER = 2**53  # exact in every JSON reader
COMMAND_ID = re.compile(r"[A-Za-z0-9_-]{8,64}")  # an app's command id (ours: uuid4 hex)


@dataclass(frozen=True, slots=True)
class Limits:
    """Settings the gate applies (from `Settings.command_*`)."""

    min_soc_pct: float = 20.0
    per_vehicle_per_min: int = 30
    per_caller_per_min: int = 600


def authorise(who: Principal, spec: CommandSpec) -> None:
    """An owner may send the commands marked for owners (to their own vehicles: the registry
    lookup checked that); anyone else needs the command's role."""
    if who.owner_id is not None:
        if not spec.owner_may:
            raise Forbidden(f"{spec.name} is not a command an owner may send")
        return
    who.require(spec.min_role)


class Gate:
    def __init__(self, store: CommandStore, limits: Limits) -> None:
        self._store = store
        self._settings = {"command_min_soc_pct": limits.min_soc_pct}
        rate_v, rate_c = limits.per_vehicle_per_min, limits.per_caller_per_min
        self._per_vehicle = TokenBuckets(rate_v, rate_v)
        self._per_caller = TokenBuckets(rate_c, rate_c)

    def admit(
        self,
        who: Principal,
        vehicle: Vehicle,
        spec: CommandSpec,
        params: Mapping[str, object],
        now: int,
    ) -> bool:
        """Take a token of each rate limit and check the interlocks; whether the vehicle is
        online."""
        self._rate_limit(who, vehicle, now)
        paths = {rule.signal for rule in spec.interlocks}
        online, reported = self._store.interlock_view(vehicle.id, paths)
        refusal = spec.refusal(reported, self._settings)
        if refusal is not None:
            reason, message = refusal
            detail = f"{reason}: {message}"
            self._store.audit(
                AuditEntry(
                    now, who.name, "refused", detail, vehicle.brand, vehicle.vin, None, spec.name
                )
            )
            raise Refused(reason, f"{spec.name} {message}")
        return online

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


def check_signed(
    signed: SignedCommand, vehicle: Vehicle, checked: dict[str, int | float | bool], now: int
) -> dict[str, int | float | bool]:
    """The parameters of an app-signed command, when its envelope is one to forward."""
    if signed.v != SIGNED_VERSION:
        raise InvalidInput(f"a signed command has v={SIGNED_VERSION}")
    if not COMMAND_ID.fullmatch(signed.id):  # whole string: no final newline slips by
        raise InvalidInput("a command id has 8 to 64 letters, digits, '-' or '_'")
    if signed.vin != vehicle.vin:
        raise InvalidInput("the command is signed for another VIN than the one in the path")
    if not same_params(checked, signed.params):  # 1, 1.0 and true are different bytes
        raise InvalidInput(
            f"sign the parameters in full, as the command table gives them: {checked}"
        )
    if not 1 <= signed.counter <= MAX_COUNTER:
        raise InvalidInput(f"a counter is between 1 and {MAX_COUNTER}")
    window = MAX_EXPIRY_S * 1000
    if (
        not now < signed.expires <= now + window
        or not 0 <= signed.expires - signed.issued <= window
    ):
        raise InvalidInput(
            f"expires must be in the future, at most {MAX_EXPIRY_S} s after now and after issued"
        )
    return checked
