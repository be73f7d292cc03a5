"""The vehicle side of key updates: apply a signed key list from `vehicles/{VIN}/keys`, and
say so on `vehicles/{VIN}/keys/result`.

The platform publishes the keys a car is to trust (retained, so a car that was away gets
the newest list when it reconnects) whenever a key is enrolled or revoked. The car checks the
list (`command_keyset.verify_key_list`: signed by a platform key it trusts, for its VIN,
newer than the last list it applied) and then trusts exactly the listed keys with their
roles: a revoked key is dropped, so a command it signed is `rejected` (`unknown_key`).

Each list gets an answer (`protocol.KeyListResult`): `applied` with its serial, or `refused`
with the reason `verify_key_list` gave (and the list's serial when it could be read). A list
it refuses changes nothing. The retained list it already applied comes again at each
reconnect: it is confirmed again (`applied`, same serial) when its keys are the ones in
force, so a confirmation lost on the way is made good and the platform's record converges;
another list with that serial is refused (`replayed_counter`).
"""

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING

from autocloud.domain.command_keyset import KeyEntry, verify_key_list
from autocloud.domain.command_signing import Rejection
from autocloud.domain.protocol import KeyListStatus, Topic

if TYPE_CHECKING:
    from autocloud.sim.inbound import Outgoing
    from autocloud.sim.vehicle import SimVehicle

log = logging.getLogger(__name__)


def handle(vehicle: "SimVehicle", payload: bytes, now_ms: int) -> "Outgoing":
    """Inbound handler of the `keys` sub-topic (registered in sim/inbound.py)."""
    remote = vehicle.remote
    if not payload:  # the retained list was cleared (the vehicle was deleted)
        return []
    verdict = verify_key_list(
        payload,
        vin=vehicle.vin,
        keys=remote.keys,
        roles=remote.roles,
        last_serial=remote.key_serial,
    )
    listed = verdict.key_list
    if listed is not None and verdict.ok:
        remote.trust(listed.keys)
        remote.key_serial = listed.serial
        return [_answer(vehicle, now_ms, KeyListStatus.APPLIED, listed.serial)]
    if (
        listed is not None
        and verdict.reason == Rejection.REPLAYED_COUNTER
        and listed.serial == remote.key_serial
        and _in_force(vehicle, listed.keys)
    ):
        # The retained list again (a reconnect); authentic (signature and VIN were checked
        # before the serial) and the very keys in force: confirm it again.
        return [_answer(vehicle, now_ms, KeyListStatus.APPLIED, listed.serial)]
    log.warning("%s: refused a key list (%s)", vehicle.vin, verdict.reason)
    serial = listed.serial if listed is not None else None
    return [_answer(vehicle, now_ms, KeyListStatus.REFUSED, serial, verdict.reason)]


def _in_force(vehicle: "SimVehicle", entries: Sequence[KeyEntry]) -> bool:
    """Whether exactly these keys, with these roles, are the ones the car trusts."""
    remote = vehicle.remote
    trusted = {kid: (raw, remote.roles.get(kid)) for kid, raw in remote.keys.items()}
    return {e.kid: (e.raw, e.role) for e in entries} == trusted


def _answer(
    vehicle: "SimVehicle",
    now_ms: int,
    status: KeyListStatus,
    serial: int | None,
    reason: str | None = None,
) -> tuple[str, bytes]:
    from autocloud.sim.inbound import reply  # inbound's table imports this module

    fields: dict[str, object] = {"status": status.value}
    if serial is not None:
        fields["serial"] = serial
    if reason is not None:
        fields["reason"] = reason
    return reply(vehicle, Topic.KEYS_RESULT, vehicle.plan.vehicle_ms(now_ms), **fields)
