"""The vehicle side of remote commands: verify, execute at most once, answer.

For each message on `vehicles/{vin}/commands` the simulated car:

1. authenticates it with the keys it was enrolled with (`command_signing.authenticate`):
   unknown key or bad signature -> `rejected`; a command the key's role may not sign
   (an owner's app key and the immobiliser, `command_keyset.permits`) -> `not_permitted`;
2. answers a command id it has already answered with the stored answer (a resend after a
   reconnect must not unlock twice);
3. checks VIN, expiry (its own clock) and the counter of the key (`command_signing.check`);
4. re-checks the command table's interlocks against its own state (speed above 5 km/h...);
5. applies the effect to its model, so the next telemetry report shows it, and answers
   `accepted` then `succeeded` / `failed` with a reason.

Nothing here raises on a bad payload: a message it cannot even read as a command is
logged and dropped (there is no id to answer to).
"""

import logging
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from autocloud.domain import command_signing as signing
from autocloud.domain.command_keyset import NOT_PERMITTED, permits
from autocloud.domain.commands import SOC, SPECS, SPEED
from autocloud.domain.errors import InvalidInput
from autocloud.domain.protocol import CommandStatus, Topic

if TYPE_CHECKING:
    from autocloud.sim.inbound import Outgoing
    from autocloud.sim.vehicle import SimVehicle

log = logging.getLogger(__name__)
Answer = tuple[str, str | None, dict[str, object]]  # status, reason, data
Effect = Callable[["SimVehicle", Mapping[str, Any]], Answer]
OK: Answer = (CommandStatus.SUCCEEDED.value, None, {})


def handle(vehicle: "SimVehicle", payload: bytes, now_ms: int) -> "Outgoing":
    """Inbound handler of the `commands` sub-topic (registered in sim/inbound.py)."""
    command = signing.decode(payload)
    if command is None or command.v != signing.SIGNED_VERSION:
        log.warning("%s: dropped a command it cannot read", vehicle.vin)
        return []
    remote = vehicle.remote
    reason = signing.authenticate(command, remote.keys)
    role = remote.roles.get(command.kid)
    if reason is None and command.name in SPECS and not permits(role, command.name):
        reason = NOT_PERMITTED  # e.g. an owner's app key and the immobiliser
    if reason is not None:
        return [_reply(vehicle, now_ms, command.id, (CommandStatus.REJECTED.value, reason, {}))]
    stored = remote.answers.get(command.id)
    if stored is not None:  # a resend: the same answer again, nothing runs twice
        return [_reply(vehicle, now_ms, command.id, stored)]
    clock_ms = vehicle.plan.vehicle_ms(now_ms)
    last = remote.last_counter.get(command.kid, 0)
    reason = signing.check(command, vin=vehicle.vin, now_ms=clock_ms, last_counter=last)
    if reason is not None:
        return [_reply(vehicle, now_ms, command.id, (CommandStatus.REJECTED.value, reason, {}))]
    remote.last_counter[command.kid] = command.counter
    answer = execute(vehicle, command.name, command.params)
    remote.remember(command.id, answer)
    if answer[0] == CommandStatus.REJECTED.value:
        return [_reply(vehicle, now_ms, command.id, answer)]
    accepted: Answer = (CommandStatus.ACCEPTED.value, None, {})
    return [
        _reply(vehicle, now_ms, command.id, accepted),
        _reply(vehicle, now_ms, command.id, answer),
    ]


def execute(vehicle: "SimVehicle", name: str, params: Mapping[str, Any]) -> Answer:
    """Check the command against the table and the car's own state, then carry it out."""
    spec = SPECS.get(name)
    effect = EFFECTS.get(name)
    if spec is None or effect is None:
        return (CommandStatus.REJECTED.value, "unknown_command", {})
    try:
        checked = spec.validate(params)
    except InvalidInput as exc:
        return (CommandStatus.REJECTED.value, "invalid_params", {"detail": str(exc)})
    state = vehicle.model.state
    readings = {SPEED: state.speed_kmh, SOC: state.soc_pct if vehicle.spec.electric else None}
    refusal = spec.refusal(readings)
    if refusal is not None:
        return (CommandStatus.REJECTED.value, refusal[0], {"detail": refusal[1]})
    if spec.electric_only and not vehicle.spec.electric:
        return (CommandStatus.FAILED.value, "not_supported", {"detail": "no traction battery"})
    answer = effect(vehicle, checked)
    if answer[0] == CommandStatus.SUCCEEDED.value:
        vehicle.remote.executed += 1
        vehicle.remote.report_now = True
    return answer


def _reply(
    vehicle: "SimVehicle", now_ms: int, command_id: str, answer: Answer
) -> tuple[str, bytes]:
    from autocloud.sim.inbound import reply  # inbound's table imports this module

    status, reason, data = answer
    fields: dict[str, Any] = {"id": command_id, "status": status, "data": data}
    if reason is not None:
        fields["reason"] = reason
    return reply(vehicle, Topic.COMMAND_RESULT, vehicle.plan.vehicle_ms(now_ms), **fields)


# --- effects: one per command of the table -----------------------------------------------------


def _lock(v: "SimVehicle", _p: Mapping[str, Any]) -> Answer:
    v.model.lock()
    return OK


def _unlock(v: "SimVehicle", _p: Mapping[str, Any]) -> Answer:
    v.model.unlock()
    return OK


def _climate_start(v: "SimVehicle", p: Mapping[str, Any]) -> Answer:
    v.model.state.hvac_target_c = float(p["target_temp_c"])
    v.remote.climate_on = True
    return OK


def _climate_stop(v: "SimVehicle", _p: Mapping[str, Any]) -> Answer:
    v.remote.climate_on = False
    return OK


def _horn_and_lights(v: "SimVehicle", p: Mapping[str, Any]) -> Answer:
    return (CommandStatus.SUCCEEDED.value, None, {"horn": not p["lights_only"], "lights": True})


def _charge_start(v: "SimVehicle", _p: Mapping[str, Any]) -> Answer:
    s = v.model.state
    if not s.plugged_in:
        return (CommandStatus.FAILED.value, "cable_not_connected", {})
    v.charging = True
    return (CommandStatus.SUCCEEDED.value, None, {"at_limit": s.soc_pct >= s.charge_limit_pct})


def _charge_stop(v: "SimVehicle", _p: Mapping[str, Any]) -> Answer:
    v.charging = False
    v.model.state.charging = False
    return OK


def _charge_limit(v: "SimVehicle", p: Mapping[str, Any]) -> Answer:
    v.model.state.charge_limit_pct = int(p["percent"])
    return OK


def _windows_close(v: "SimVehicle", _p: Mapping[str, Any]) -> Answer:
    v.model.state.windows_pct = [0] * len(v.model.state.windows_pct)
    return OK


def _trunk_open(v: "SimVehicle", _p: Mapping[str, Any]) -> Answer:
    v.model.state.trunk_open = True
    return OK


def _immobiliser(on: bool) -> Effect:
    def effect(v: "SimVehicle", _p: Mapping[str, Any]) -> Answer:
        v.remote.immobilised = on
        return OK

    return effect


def _telemetry_rate(v: "SimVehicle", p: Mapping[str, Any]) -> Answer:
    v.remote.report_s = int(p["seconds"])
    return OK


def _diagnostic_readout(v: "SimVehicle", _p: Mapping[str, Any]) -> Answer:
    s = v.model.state
    data: dict[str, object] = {
        "dtcs": list(s.dtcs),
        "odometer_m": int(s.odometer_m),
        "lv_voltage": round(s.lv_voltage, 2),
    }
    return (CommandStatus.SUCCEEDED.value, None, data)


EFFECTS: dict[str, Effect] = {
    "lock": _lock,
    "unlock": _unlock,
    "climate_start": _climate_start,
    "climate_stop": _climate_stop,
    "horn_and_lights": _horn_and_lights,
    "charge_start": _charge_start,
    "charge_stop": _charge_stop,
    "charge_limit": _charge_limit,
    "windows_close": _windows_close,
    "trunk_open": _trunk_open,
    "immobiliser_enable": _immobiliser(True),
    "immobiliser_disable": _immobiliser(False),
    "telemetry_rate": _telemetry_rate,
    "diagnostic_readout": _diagnostic_readout,
}
