"""Vehicle protocol v1: the messages a vehicle publishes, decoded with msgspec.

Topics live under `vehicles/{vin}/`; this module knows their names, the shape of each
payload and how to decode it (JSON by default, MessagePack when the MQTT 5 content type
says so). Decoding errors become `ProtocolError`s carrying a dead-letter reason, so the
ingest pipeline can keep the raw payload and say exactly why it was refused.
See docs/protocol.md for the normative text.
"""

import enum
from typing import Annotated, Any

import msgspec
from msgspec import Meta

PROTOCOL_VERSION = 1
TOPIC_ROOT = "vehicles"
MSGPACK_CONTENT_TYPE = "application/msgpack"


class Topic(enum.StrEnum):
    """Sub-topics a vehicle publishes to (vehicle to cloud)."""

    TELEMETRY = "telemetry"
    EVENTS = "events"
    STATE = "state"
    COMMAND_RESULT = "commands/result"
    DIAG_RESPONSE = "diag/response"
    KEYS_RESULT = "keys/result"  # the vehicle's answer to a key list: applied or refused


class CloudTopic(enum.StrEnum):
    """Sub-topics the platform publishes to (cloud to vehicle)."""

    COMMANDS = "commands"
    DIAG_REQUEST = "diag/request"
    CONFIG = "config"
    KEYS = "keys"  # retained: the signed list of command keys the vehicle trusts


class Reason(enum.StrEnum):
    """Why a message or a value was dead-lettered. Values are stable API strings."""

    BAD_TOPIC = "bad_topic"
    OVERSIZE = "oversize"
    MALFORMED = "malformed"
    SCHEMA = "schema"
    UNSUPPORTED_VERSION = "unsupported_version"
    UNKNOWN_VEHICLE = "unknown_vehicle"
    VIN_MISMATCH = "vin_mismatch"
    UNKNOWN_SIGNAL = "unknown_signal"
    WRONG_TYPE = "wrong_type"
    OUT_OF_RANGE = "out_of_range"
    NOT_ALLOWED = "not_allowed"
    FUTURE_TIMESTAMP = "future_timestamp"
    INVALID_TIMESTAMP = "invalid_timestamp"
    DUPLICATE = "duplicate"
    STALE_SEQ = "stale_seq"
    UNKNOWN_EVENT = "unknown_event"
    INTERNAL_ERROR = "internal_error"  # the platform failed on it: a defect to report


# Bounds that keep every value storable (64-bit integers, short printable ids).
Seq = Annotated[int, Meta(ge=0, le=2**63 - 1)]
Millis = Annotated[int, Meta(ge=0, le=2**63 - 1)]
SessionId = Annotated[str, Meta(min_length=1, max_length=64, pattern=r"^[\x21-\x7e]+$")]
EventType = Annotated[str, Meta(min_length=1, max_length=100, pattern=r"^[a-z]+(\.[a-z0-9_]+)*$")]
VinField = Annotated[str, Meta(max_length=64)]
RequestId = Annotated[str, Meta(min_length=1, max_length=64, pattern=r"^[\x21-\x7e]+$")]
# No NUL: PostgreSQL text columns refuse it (the commit would fail, not the message).
ShortText = Annotated[str, Meta(max_length=500, pattern=r"^[^\x00]*$")]
EcuName = Annotated[str, Meta(min_length=1, max_length=32, pattern=r"^[A-Za-z0-9_.-]+$")]
HexBytes = Annotated[str, Meta(max_length=16384, pattern=r"^([0-9a-fA-F]{2})*$")]


class ProtocolError(Exception):
    """A payload that cannot be decoded into a v1 message."""

    def __init__(self, reason: Reason, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


class Sample(msgspec.Struct, forbid_unknown_fields=True):
    """Signal values measured at one instant (`ts`, ms since the epoch, vehicle clock)."""

    ts: Millis
    signals: dict[str, Any]


class Telemetry(msgspec.Struct, forbid_unknown_fields=True):
    """A telemetry message: one sample inline (`ts`+`signals`) or several in `samples`."""

    v: int
    sid: SessionId
    seq: Seq
    ts: Millis | None = None
    signals: dict[str, Any] | None = None
    samples: list[Sample] | None = None
    vin: VinField | None = None


class Event(msgspec.Struct, forbid_unknown_fields=True):
    """A typed event such as `dtc.raised`, `alarm.tow` or `crash`."""

    v: int
    sid: SessionId
    seq: Seq
    ts: Millis
    type: EventType
    data: dict[str, Any] = {}
    vin: VinField | None = None


class State(msgspec.Struct, forbid_unknown_fields=True):
    """Connection state; retained, and the vehicle's last will says `online: false`."""

    online: bool
    ts: Millis | None = None
    sid: SessionId | None = None
    v: int = PROTOCOL_VERSION
    vin: VinField | None = None


class CommandStatus(enum.StrEnum):
    """What a vehicle reports about a command it received."""

    ACCEPTED = "accepted"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    REJECTED = "rejected"


class CommandResult(msgspec.Struct, forbid_unknown_fields=True):
    """The vehicle's answer to command `id`: accepted, then succeeded, failed or rejected."""

    v: int
    sid: SessionId
    seq: Seq
    ts: Millis
    id: RequestId
    status: CommandStatus
    reason: ShortText | None = None
    data: dict[str, Any] = {}
    vin: VinField | None = None


class DiagResponse(msgspec.Struct, forbid_unknown_fields=True):
    """One ECU's ISO 14229 (UDS) response to diagnostic request `id`, hex-encoded."""

    v: int
    sid: SessionId
    seq: Seq
    ts: Millis
    id: RequestId
    ecu: EcuName
    response: HexBytes
    vin: VinField | None = None


class KeyListStatus(enum.StrEnum):
    """What a vehicle did with a signed key list it received on `keys`."""

    APPLIED = "applied"
    REFUSED = "refused"


class KeyListResult(msgspec.Struct, forbid_unknown_fields=True):
    """The vehicle's answer to key list `serial`: applied (it trusts exactly those keys
    now), or refused with the reason (`bad_signature`, `replayed_counter`...). `serial` is
    absent only when the refused list could not even be read."""

    v: int
    sid: SessionId
    seq: Seq
    ts: Millis
    status: KeyListStatus
    serial: Seq | None = None
    reason: ShortText | None = None
    vin: VinField | None = None


Message = Telemetry | Event | State | CommandResult | DiagResponse | KeyListResult
SequencedMessage = Telemetry | Event | CommandResult | DiagResponse | KeyListResult

EVENT_FAMILIES = frozenset({"dtc", "alarm", "crash", "hazard", "trip", "charging", "ota"})

_TYPES: dict[Topic, type[Message]] = {
    Topic.TELEMETRY: Telemetry,
    Topic.EVENTS: Event,
    Topic.STATE: State,
    Topic.COMMAND_RESULT: CommandResult,
    Topic.DIAG_RESPONSE: DiagResponse,
    Topic.KEYS_RESULT: KeyListResult,
}
_JSON = {t: msgspec.json.Decoder(cls) for t, cls in _TYPES.items()}
_MSGPACK = {t: msgspec.msgpack.Decoder(cls) for t, cls in _TYPES.items()}


def split_topic(topic: str) -> tuple[str, Topic]:
    """Return (vin, sub-topic) of `vehicles/{vin}/{sub}` or raise a BAD_TOPIC error."""
    parts = topic.split("/", 2)
    if len(parts) != 3 or parts[0] != TOPIC_ROOT or not parts[1]:
        raise ProtocolError(Reason.BAD_TOPIC, f"topic {topic!r} is not vehicles/{{vin}}/{{kind}}")
    try:
        return parts[1], Topic(parts[2])
    except ValueError:
        known = ", ".join(t.value for t in Topic)
        raise ProtocolError(
            Reason.BAD_TOPIC, f"sub-topic {parts[2]!r} is not one of: {known}"
        ) from None


def decode(kind: Topic, payload: bytes, content_type: str | None = None) -> Message:
    """Decode a payload of the given sub-topic and check its envelope."""
    decoder = _MSGPACK[kind] if content_type == MSGPACK_CONTENT_TYPE else _JSON[kind]
    try:
        message = decoder.decode(payload)
    except msgspec.ValidationError as exc:
        raise ProtocolError(Reason.SCHEMA, f"{kind} message does not match v1: {exc}") from None
    except (msgspec.DecodeError, RecursionError, UnicodeDecodeError) as exc:
        why = "nested too deeply" if isinstance(exc, RecursionError) else str(exc)
        raise ProtocolError(
            Reason.MALFORMED, f"payload is not valid {_fmt(content_type)}: {why}"
        ) from None
    _check_envelope(message)
    if content_type == MSGPACK_CONTENT_TYPE:
        _check_json_representable(message)
    return message


def _check_json_representable(message: Message) -> None:
    """MessagePack can carry what JSON cannot (extension types, bytes); such data is refused."""
    try:
        msgspec.json.encode(message)
    except (TypeError, ValueError, msgspec.EncodeError) as exc:
        raise ProtocolError(
            Reason.SCHEMA, f"payload holds a value JSON cannot carry: {exc}"
        ) from None


def _fmt(content_type: str | None) -> str:
    return "MessagePack" if content_type == MSGPACK_CONTENT_TYPE else "JSON"


def _check_envelope(message: Message) -> None:
    if message.v != PROTOCOL_VERSION:
        raise ProtocolError(
            Reason.UNSUPPORTED_VERSION, f"protocol version {message.v} is not supported (use 1)"
        )
    if isinstance(message, State | CommandResult | DiagResponse):
        return
    if isinstance(message, KeyListResult):
        _check_key_list_result(message)
        return
    if isinstance(message, Telemetry):
        _check_samples(message)
    elif message.type.split(".", 1)[0] not in EVENT_FAMILIES:
        families = ", ".join(sorted(EVENT_FAMILIES))
        raise ProtocolError(
            Reason.UNKNOWN_EVENT,
            f"event type {message.type!r} is not in a known family ({families})",
        )


def _check_key_list_result(message: KeyListResult) -> None:
    if message.status is KeyListStatus.APPLIED and message.serial is None:
        raise ProtocolError(Reason.SCHEMA, "an applied key list result needs its serial")
    if message.status is KeyListStatus.REFUSED and not message.reason:
        raise ProtocolError(Reason.SCHEMA, "a refused key list result needs a reason")


def _check_samples(message: Telemetry) -> None:
    inline = message.ts is not None or message.signals is not None
    if inline == (message.samples is not None):
        raise ProtocolError(
            Reason.SCHEMA, "telemetry needs either ts+signals or samples, not both or neither"
        )
    if inline and (message.ts is None or message.signals is None):
        raise ProtocolError(Reason.SCHEMA, "inline telemetry needs both ts and signals")
    if message.samples is not None and not message.samples:
        raise ProtocolError(Reason.SCHEMA, "samples must not be empty")


def samples_of(message: Telemetry) -> list[Sample]:
    """The samples of a telemetry message, whichever form it used."""
    if message.samples is not None:
        return message.samples
    assert message.ts is not None and message.signals is not None
    return [Sample(ts=message.ts, signals=message.signals)]
