"""The vehicle side of key updates: apply a signed key list from `vehicles/{VIN}/keys`.

The platform publishes the keys a car is to trust (retained, so a car that was away gets
the newest list when it reconnects) whenever a key is enrolled or revoked. The car checks the
list (`command_keyset.verify_key_list`: signed by a platform key it trusts, for its VIN,
newer than the last list it applied) and then trusts exactly the listed keys with their
roles: a revoked key is dropped, so a command it signed is `rejected` (`unknown_key`).

A list it refuses changes nothing and is logged; there is no reply topic for key lists.
"""

import logging
from typing import TYPE_CHECKING

from autocloud.domain.command_keyset import verify_key_list

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
    if verdict.key_list is None or not verdict.ok:
        again = verdict.key_list is not None and verdict.key_list.serial == remote.key_serial
        # The retained list comes again at each reconnect: only a refusal of another is news.
        log.log(
            logging.DEBUG if again else logging.WARNING,
            "%s: refused a key list (%s)",
            vehicle.vin,
            verdict.reason,
        )
        return []
    remote.trust(verdict.key_list.keys)
    remote.key_serial = verdict.key_list.serial
    return []
