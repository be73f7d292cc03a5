"""MQTT 3.1.1 and 5 packets as the platform's consumer session needs them: pure bytes in and out.

What: encoders for the packets a consumer sends (CONNECT, SUBSCRIBE, PUBLISH at QoS 1, PUBACK,
PINGREQ, DISCONNECT) and `read_packets`, which cuts every complete packet out of a receive
buffer and decodes the ones a consumer receives (CONNACK, SUBACK, PUBLISH, PUBACK, PINGRESP,
DISCONNECT). No sockets or threads here: `adapters/mqtt_link.py` drives them, and unit tests
check them byte by byte.

Why our own: paho spends ~160 µs of CPU per received QoS 1 message on this machine (three
`recv` calls per packet, a `Properties` object, topic matching, a locked output queue per
PUBACK), which caps one consumer below the ingest target before any ingest work. Parsing many
packets out of one 256 KiB `recv` costs ~8 µs a message. See docs/architecture.md,
"The platform's MQTT session".
"""

from __future__ import annotations

from dataclasses import dataclass
from struct import Struct
from typing import Final

# Fixed-header packet types (high nibble).
CONNECT: Final = 1
CONNACK: Final = 2
PUBLISH: Final = 3
PUBACK: Final = 4
PUBREC: Final = 5
PUBREL: Final = 6
PUBCOMP: Final = 7
SUBSCRIBE: Final = 8
SUBACK: Final = 9
PINGREQ_PACKET: Final = b"\xc0\x00"
PINGRESP: Final = 13
DISCONNECT: Final = 14

MAX_REMAINING: Final = 268_435_455  # what four bytes of remaining length hold
_U16: Final = Struct(">H")
_U32: Final = Struct(">I")

# MQTT 5 property identifiers this session sends or reads.
SESSION_EXPIRY: Final = 0x11
RECEIVE_MAXIMUM: Final = 0x21
CONTENT_TYPE: Final = 0x03
REASON_STRING: Final = 0x1F

# How to skip each MQTT 5 property (MQTT 5 §2.2.2.2): its value's encoding.
_BYTE, _TWO, _FOUR, _VARINT, _UTF8, _BINARY, _PAIR = range(7)
_PROPERTY_KINDS: Final[dict[int, int]] = {
    0x01: _BYTE, 0x02: _FOUR, 0x03: _UTF8, 0x08: _UTF8, 0x09: _BINARY, 0x0B: _VARINT,
    0x11: _FOUR, 0x12: _UTF8, 0x13: _TWO, 0x15: _UTF8, 0x16: _BINARY, 0x17: _BYTE,
    0x18: _FOUR, 0x19: _BYTE, 0x1A: _UTF8, 0x1C: _UTF8, 0x1F: _UTF8, 0x21: _TWO,
    0x22: _TWO, 0x23: _TWO, 0x24: _BYTE, 0x25: _BYTE, 0x26: _PAIR, 0x27: _FOUR,
    0x28: _BYTE, 0x29: _BYTE, 0x2A: _BYTE,
}  # fmt: skip


class WireError(Exception):
    """The broker sent bytes that are not the MQTT this session speaks."""


@dataclass(frozen=True, slots=True)
class Packet:
    """A received packet other than PUBLISH: its type, flags and body after the fixed header."""

    kind: int
    flags: int
    body: bytes


@dataclass(frozen=True, slots=True)
class Publish:
    """A received PUBLISH. `mid` is 0 at QoS 0."""

    topic: str
    payload: bytes
    qos: int
    retain: bool
    dup: bool
    mid: int
    content_type: str | None


# --- encoding ---------------------------------------------------------------------------


def varint(n: int) -> bytes:
    """MQTT's variable byte integer (1-4 bytes, 7 bits each, least significant first)."""
    if n < 128:
        return bytes((n,))
    if n > MAX_REMAINING:
        raise ValueError(f"an MQTT packet cannot hold {n} bytes")
    out = bytearray()
    while True:
        n, digit = divmod(n, 128)
        out.append(digit | 0x80 if n else digit)
        if not n:
            return bytes(out)


def string(value: str) -> bytes:
    raw = value.encode()
    if len(raw) > 0xFFFF:
        raise ValueError("an MQTT string holds at most 65,535 bytes")
    return _U16.pack(len(raw)) + raw


def _packet(first: int, body: bytes) -> bytes:
    return bytes((first,)) + varint(len(body)) + body


def connect(
    client_id: str,
    username: str,
    password: str,
    *,
    keepalive: int,
    mqtt5: bool,
    clean: bool = False,
    session_expiry: int = 0xFFFFFFFF,
    receive_maximum: int = 65535,
) -> bytes:
    """CONNECT with user name and password and no will; MQTT 5 asks for a session that
    outlives the connection (`session_expiry` s) and a receive window of its own."""
    flags = 0x80 | 0x40 | (0x02 if clean else 0)
    header = string("MQTT") + bytes((5 if mqtt5 else 4, flags)) + _U16.pack(keepalive)
    if mqtt5:
        props = (
            bytes((SESSION_EXPIRY,))
            + _U32.pack(session_expiry)
            + bytes((RECEIVE_MAXIMUM,))
            + _U16.pack(receive_maximum)
        )
        header += varint(len(props)) + props
    return _packet(0x10, header + string(client_id) + string(username) + string(password))


def subscribe(mid: int, filters: list[tuple[str, int]], *, mqtt5: bool) -> bytes:
    """SUBSCRIBE to `filters` (topic filter, maximum QoS)."""
    body = _U16.pack(mid) + (b"\x00" if mqtt5 else b"")
    for topic_filter, qos in filters:
        body += string(topic_filter) + bytes((qos,))
    return _packet(0x82, body)


def publish(topic: str, payload: bytes, mid: int, *, retain: bool, dup: bool, mqtt5: bool) -> bytes:
    """PUBLISH at QoS 1 (MQTT 5: no properties)."""
    first = 0x32 | (0x01 if retain else 0) | (0x08 if dup else 0)
    return _packet(first, string(topic) + _U16.pack(mid) + (b"\x00" if mqtt5 else b"") + payload)


def pubacks(mids: list[int]) -> bytes:
    """PUBACKs (success, no reason code: valid in both versions) for `mids`, in one buffer."""
    return b"".join(b"\x40\x02" + _U16.pack(mid) for mid in mids)


DISCONNECT_PACKET: Final = b"\xe0\x00"  # MQTT 5: reason 0, the session keeps its expiry


def disconnect_ending_session() -> bytes:
    """MQTT 5 DISCONNECT, reason 0, lowering the session expiry to 0: the broker deletes the
    session once it has read this packet."""
    props = bytes((SESSION_EXPIRY,)) + _U32.pack(0)
    return _packet(0xE0, b"\x00" + varint(len(props)) + props)


# --- decoding ---------------------------------------------------------------------------


def read_packets(
    buffer: bytearray, mqtt5: bool, publishes: list[Publish], others: list[Packet]
) -> None:
    """Take every complete packet off the front of `buffer`, appending PUBLISHes to
    `publishes` and the rest to `others` in arrival order; a partial packet stays."""
    end = len(buffer)
    view = memoryview(buffer)
    i = 0
    try:
        while i + 2 <= end:
            first = buffer[i]
            length, shift, j = 0, 0, i + 1
            while True:
                if j >= end:
                    return
                digit = buffer[j]
                length |= (digit & 0x7F) << shift
                j += 1
                if not digit & 0x80:
                    break
                shift += 7
                if shift > 21:
                    raise WireError("malformed remaining length")
            if j + length > end:
                return
            if first >> 4 == PUBLISH:
                publishes.append(_publish(first, view[j : j + length], mqtt5))
            else:
                others.append(Packet(first >> 4, first & 0x0F, bytes(view[j : j + length])))
            i = j + length
    finally:
        view.release()
        del buffer[:i]


def _publish(first: int, body: memoryview, mqtt5: bool) -> Publish:
    qos = (first >> 1) & 0x03
    if qos == 3:
        raise WireError("PUBLISH with QoS 3")
    if len(body) < 2:
        raise WireError("PUBLISH too short for its topic")
    size = body[0] << 8 | body[1]
    k = 2 + size
    try:
        topic = str(body[2:k], "utf-8")
    except UnicodeDecodeError:
        raise WireError("PUBLISH topic is not UTF-8") from None
    mid = 0
    if qos:
        if len(body) < k + 2:
            raise WireError("PUBLISH too short for its packet id")
        mid = body[k] << 8 | body[k + 1]
        k += 2
    content_type = None
    if mqtt5:
        if k >= len(body):
            raise WireError("PUBLISH too short for its properties")
        if body[k] == 0:  # no properties: the usual case
            k += 1
        else:
            props_length, k = _varint_at(body, k)
            if k + props_length > len(body):
                raise WireError("PUBLISH properties run past the packet")
            content_type = _content_type(body[k : k + props_length])
            k += props_length
    if k > len(body):
        raise WireError("PUBLISH properties run past the packet")
    return Publish(
        topic, bytes(body[k:]), qos, bool(first & 0x01), bool(first & 0x08), mid, content_type
    )


def _varint_at(body: memoryview | bytes, k: int) -> tuple[int, int]:
    value, shift = 0, 0
    while True:
        if k >= len(body):
            raise WireError("variable byte integer runs past the packet")
        digit = body[k]
        value |= (digit & 0x7F) << shift
        k += 1
        if not digit & 0x80:
            return value, k
        shift += 7
        if shift > 21:
            raise WireError("malformed variable byte integer")


def properties(raw: memoryview | bytes) -> dict[int, object]:
    """MQTT 5 properties as {identifier: value} (user properties: a list of pairs)."""
    try:
        return _properties(raw)
    except IndexError:
        raise WireError("property runs past the packet") from None


def _properties(raw: memoryview | bytes) -> dict[int, object]:
    out: dict[int, object] = {}
    k, end = 0, len(raw)
    while k < end:
        ident = raw[k]
        kind = _PROPERTY_KINDS.get(ident)
        k += 1
        value: object
        if kind == _BYTE:
            value, k = raw[k], k + 1
        elif kind == _TWO:
            value, k = raw[k] << 8 | raw[k + 1], k + 2
        elif kind == _FOUR:
            value, k = int.from_bytes(raw[k : k + 4], "big"), k + 4
        elif kind == _VARINT:
            value, k = _varint_at(raw, k)
        elif kind in (_UTF8, _BINARY):
            size = raw[k] << 8 | raw[k + 1]
            chunk = bytes(raw[k + 2 : k + 2 + size])
            value, k = (chunk.decode("utf-8", "replace") if kind == _UTF8 else chunk), k + 2 + size
        elif kind == _PAIR:
            pairs: list[tuple[str, str]] = out.setdefault(ident, [])  # type: ignore[assignment]
            key_size = raw[k] << 8 | raw[k + 1]
            key = bytes(raw[k + 2 : k + 2 + key_size]).decode("utf-8", "replace")
            k += 2 + key_size
            value_size = raw[k] << 8 | raw[k + 1]
            pairs.append((key, bytes(raw[k + 2 : k + 2 + value_size]).decode("utf-8", "replace")))
            k += 2 + value_size
            continue
        else:
            raise WireError(f"unknown MQTT 5 property 0x{ident:02x}")
        if k > end:
            raise WireError("property runs past the packet")
        out[ident] = value
    return out


def _content_type(raw: memoryview) -> str | None:
    value = properties(raw).get(CONTENT_TYPE)
    return value if isinstance(value, str) else None


@dataclass(frozen=True, slots=True)
class Connack:
    session_present: bool
    code: int  # 0 accepted; MQTT 3.1.1 return codes 1-5, MQTT 5 reason codes >= 0x80
    receive_maximum: int
    reason: str | None


_REFUSED_311: Final = {
    1: "unacceptable protocol version",
    2: "identifier rejected",
    3: "server unavailable",
    4: "bad user name or password",
    5: "not authorised",
}
_REFUSED_5: Final = {
    0x80: "unspecified error",
    0x81: "malformed packet",
    0x82: "protocol error",
    0x84: "unsupported protocol version",
    0x85: "client identifier not valid",
    0x86: "bad user name or password",
    0x87: "not authorised",
    0x88: "server unavailable",
    0x89: "server busy",
    0x8A: "banned",
    0x8C: "bad authentication method",
    0x95: "packet too large",
    0x97: "quota exceeded",
    0x9F: "connection rate exceeded",
}


def connack(body: bytes, mqtt5: bool) -> Connack:
    if len(body) < 2:
        raise WireError("CONNACK too short")
    receive_maximum, reason = 65535, None
    if mqtt5 and len(body) > 2:
        length, k = _varint_at(body, 2)
        props = properties(body[k : k + length])
        receive_maximum = int(props.get(RECEIVE_MAXIMUM, 65535))  # type: ignore[call-overload]
        reason_string = props.get(REASON_STRING)
        reason = reason_string if isinstance(reason_string, str) else None
    return Connack(bool(body[0] & 0x01), body[1], receive_maximum, reason)


def refusal(code: int, mqtt5: bool) -> str:
    """A CONNACK or SUBACK failure code in words."""
    table = _REFUSED_5 if mqtt5 else _REFUSED_311
    return table.get(code, f"code 0x{code:02x}")


def suback_codes(body: bytes, mqtt5: bool) -> tuple[int, list[int]]:
    """SUBACK's packet id and one granted-QoS or failure code per filter."""
    if len(body) < 3:
        raise WireError("SUBACK too short")
    mid = body[0] << 8 | body[1]
    k = 2
    if mqtt5:
        length, k = _varint_at(body, 2)
        k += length
    return mid, list(body[k:])


def puback_of(body: bytes) -> tuple[int, int]:
    """PUBACK's packet id and reason code (0 when the broker left it out)."""
    if len(body) < 2:
        raise WireError("PUBACK too short")
    return body[0] << 8 | body[1], body[2] if len(body) > 2 else 0
