"""The simulated car's control units: they answer UDS requests tunnelled over MQTT.

What: each simulated car has the ECUs of its powertrain (a combustion car an ECM and a TCM,
an electric one a BMS, every car ABS and BCM; table `autocloud.domain.uds.ECUS`). The
telematics gateway routes a `diag/request` by CAN address; an address the car has no ECU
at gets no answer, as on a real bus. Each ECU parses the request bytes and answers as a
real one would: positive responses from the car's model (VIN, software versions,
odometer, its own active DTCs with status bytes) and negative ones — serviceNotSupported
(0x11), subFunctionNotSupported (0x12), incorrectMessageLength (0x13), requestOutOfRange
(0x31, e.g. a DID it does not hold) and conditionsNotCorrect (0x22: clearing DTCs while the
car moves). A clear really erases the codes from the car's DTC monitor.

Why a table per service: a new service is one function and one line.
"""

import logging
import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from udsoncan.common.DidCodec import DidCodec
from udsoncan.Response import Response
from udsoncan.services.ClearDiagnosticInformation import ClearDiagnosticInformation
from udsoncan.services.ReadDataByIdentifier import ReadDataByIdentifier
from udsoncan.services.ReadDTCInformation import ReadDTCInformation

from autocloud.domain import uds
from autocloud.domain.protocol import Topic

if TYPE_CHECKING:
    from autocloud.sim.vehicle import SimVehicle

log = logging.getLogger(__name__)

ACTIVE_STATUS: Final = 0x2F  # failed now, this cycle, pending, confirmed, since last clear
MIL: Final = 0x80  # warningIndicatorRequested: emissions codes of the engine light the MIL
STATUS_AVAILABILITY: Final = 0xFF  # every status bit is supported
MOVING_KMH: Final = 0.5

# Software versions (DIDs 0xF189, 0xF195) of this simulated fleet's ECUs.
SOFTWARE: Final[dict[str, tuple[str, str]]] = {
    "ECM": ("EC 0412.03", "BSH MED17.5"),
    "TCM": ("TC 0210.11", "ZF 8HP-G3"),
    "ABS": ("AB 0105.02", "CNT MK100"),
    "BMS": ("BM 0307.00", "LGE BMS4"),
    "BCM": ("BC 0520.14", "HLA BCM5"),
}
ODOMETER_ECUS: Final = frozenset({"ECM", "BCM"})  # the ECUs that keep the odometer


def owner(code: str, has_engine: bool) -> str:
    """Which ECU stores a code: the BMS its pack codes, the engine (or, without one, the
    body controller) the 12 V code, the engine everything else."""
    if code.startswith("P0A"):
        return "BMS"
    if code == "P0562" and not has_engine:
        return "BCM"
    return "ECM"


@dataclass(frozen=True, slots=True)
class SimEcu:
    """One ECU of one car; what it answers comes from the car's model at request time."""

    spec: uds.Ecu

    @property
    def name(self) -> str:
        return self.spec.name

    def answer(self, vehicle: "SimVehicle", request: bytes, now_ms: int) -> bytes:
        """The UDS response to `request` (positive or 0x7F negative)."""
        if not request:
            return _negative(0x00, Response.Code.IncorrectMessageLengthOrInvalidFormat)
        service = SERVICES.get(request[0])
        if service is None:
            return _negative(request[0], Response.Code.ServiceNotSupported)
        return service(self, vehicle, request[1:], now_ms)

    def dids(self, vehicle: "SimVehicle") -> dict[int, object]:
        """The data identifiers this ECU holds, with their current values."""
        software, supplier = SOFTWARE[self.name]
        values: dict[int, object] = {
            uds.DID_VIN: vehicle.vin,
            uds.DID_SW_VERSION: software,
            uds.DID_SUPPLIER_SW: supplier,
        }
        if self.name in ODOMETER_ECUS:
            values[uds.DID_ODOMETER] = vehicle.model.state.odometer_m / 1000
        return values

    def dtcs(self, vehicle: "SimVehicle") -> list[tuple[str, int]]:
        """This ECU's active codes with their status bytes."""
        engine = vehicle.spec.combustion
        mil = MIL if self.name == "ECM" else 0
        return [
            (d.code, ACTIVE_STATUS | mil)
            for d in vehicle.dtc.active
            if owner(d.code, engine) == self.name
        ]


def _negative(sid: int, code: int) -> bytes:
    return bytes((0x7F, sid, code))


def _codec(did: int) -> DidCodec:
    codec = uds.DIDS[did]
    assert isinstance(codec, DidCodec)
    return codec


def _read_data(unit: SimEcu, vehicle: "SimVehicle", data: bytes, now_ms: int) -> bytes:
    sid = ReadDataByIdentifier.request_id()
    if not data or len(data) % 2:
        return _negative(sid, Response.Code.IncorrectMessageLengthOrInvalidFormat)
    held = unit.dids(vehicle)
    out = bytearray((ReadDataByIdentifier.response_id(),))
    for (did,) in struct.iter_unpack(">H", data):
        if did in held:
            out += struct.pack(">H", did) + _codec(did).encode(held[did])
    if len(out) == 1:  # none of the identifiers is held here
        return _negative(sid, Response.Code.RequestOutOfRange)
    return bytes(out)


def _read_dtcs(unit: SimEcu, vehicle: "SimVehicle", data: bytes, now_ms: int) -> bytes:
    sid = ReadDTCInformation.request_id()
    if not data:
        return _negative(sid, Response.Code.IncorrectMessageLengthOrInvalidFormat)
    subfunction = data[0] & 0x7F  # bit 7: suppressPosRspMsgIndicationBit
    if subfunction != ReadDTCInformation.Subfunction.reportDTCByStatusMask:
        return _negative(sid, Response.Code.SubFunctionNotSupported)
    if len(data) != 2:
        return _negative(sid, Response.Code.IncorrectMessageLengthOrInvalidFormat)
    mask = data[1]
    out = bytearray((ReadDTCInformation.response_id(), subfunction, STATUS_AVAILABILITY))
    for code, status in unit.dtcs(vehicle):
        if status & mask:
            out += uds.dtc_number(code).to_bytes(3, "big") + bytes((status,))
    return bytes(out)


def _clear(unit: SimEcu, vehicle: "SimVehicle", data: bytes, now_ms: int) -> bytes:
    sid = ClearDiagnosticInformation.request_id()
    if len(data) not in (3, 4):  # group of DTC (+ memory selection since ISO 14229-1:2020)
        return _negative(sid, Response.Code.IncorrectMessageLengthOrInvalidFormat)
    if int.from_bytes(data[:3], "big") != uds.ALL_DTC_GROUPS:
        return _negative(sid, Response.Code.RequestOutOfRange)
    if vehicle.model.state.speed_kmh > MOVING_KMH or vehicle.model.state.moving:
        return _negative(sid, Response.Code.ConditionsNotCorrect)
    codes = [code for code, _status in unit.dtcs(vehicle)]
    ts = vehicle.plan.vehicle_ms(now_ms)
    for event in vehicle.dtc.clear(codes):
        vehicle.buffer.add_event(ts, str(event["type"]), dict(event["data"]))
    return bytes((ClearDiagnosticInformation.response_id(),))


Service = Callable[[SimEcu, "SimVehicle", bytes, int], bytes]
SERVICES: Final[dict[int, Service]] = {
    ReadDTCInformation.request_id(): _read_dtcs,
    ReadDataByIdentifier.request_id(): _read_data,
    ClearDiagnosticInformation.request_id(): _clear,
}


def ecus_of(vehicle: "SimVehicle") -> dict[int, SimEcu]:
    """The car's ECUs by CAN request address, from its powertrain."""
    powertrain = vehicle.spec.powertrain.value
    return {e.address: SimEcu(e) for e in uds.ECUS.values() if powertrain in e.powertrains}


def handle(vehicle: "SimVehicle", payload: bytes, now_ms: int) -> list[tuple[str, bytes]]:
    """`diag/request` handler: route to the ECU at the address and send its answer."""
    from autocloud.sim.inbound import reply  # inbound's table imports this module

    try:
        request = uds.decode_request(payload)
        data = bytes.fromhex(request.request)
    except ValueError as exc:
        log.info("%s ignores a diagnostic request: %s", vehicle.vin, exc)
        return []
    if request.expires < now_ms:
        log.info("%s ignores diagnostic request %s: expired", vehicle.vin, request.id)
        return []
    unit = ecus_of(vehicle).get(request.addr)
    if unit is None:  # nothing at that address on the bus: silence, as on a real car
        return []
    response = unit.answer(vehicle, data, now_ms)
    ts = vehicle.plan.vehicle_ms(now_ms)
    return [
        reply(
            vehicle,
            Topic.DIAG_RESPONSE,
            ts,
            id=request.id,
            ecu=request.ecu,
            response=response.hex(),
        )
    ]
