"""A lean MQTT 3.1.1 publisher for load mode's fleet gateways: QoS 1 PUBLISH, nothing else.

What: :class:`GatewaySession` is one gateway's connection (client id = username = its login,
clean session off, no will, no subscriptions, which is all the broker allows a gateway). It
speaks the five packets a publisher needs — CONNECT/CONNACK, PUBLISH (QoS 1, optionally
retained)/PUBACK, PINGREQ/PINGRESP, DISCONNECT — and keeps every PUBLISH until its PUBACK
arrives; after a lost connection it connects again (after a second) and sends the
unacknowledged messages again, oldest first, with the DUP flag on those that had been
written before, as MQTT 3.1.1 §4.4 asks. A :class:`autocloud.sim.transport.Pool` drives it
like the vehicles' paho sessions.

Why not paho here: a gateway publishes tens of thousands of messages a second from one
thread. paho costs ~70-100 µs per message on this machine (profile in BENCHMARKS.md,
"Simulator"): a `MQTTMessageInfo` with a `threading.Condition` and an `MQTTMessage` per
publish, one `send` system call per packet, and three `recv` calls plus callbacks per PUBACK.
Here a PUBLISH is its bytes appended to one output buffer, written with one `send` per
64 KiB, and PUBACKs are parsed from one `recv` of up to 256 KiB: a few microseconds per
message. The vehicles' own sessions (realistic mode, commands, last wills) stay on paho.
`tests/sim/test_gateway_session.py` checks it against a real Mosquitto.
"""

from __future__ import annotations

import contextlib
import socket as sockets
import time
from collections import deque
from collections.abc import Callable
from itertools import repeat
from struct import Struct, unpack
from typing import Final

from autocloud.adapters import mqtt_wire
from autocloud.sim.transport import SocketEvents

__all__ = ["GatewaySession", "ProtocolError"]

FLUSH_BYTES: Final = 64 * 1024  # write the output buffer once it holds this much
READ_BYTES: Final = 256 * 1024
RECONNECT_S: Final = 1.0
CONNECT_TIMEOUT_S: Final = 10.0

_CONNACK: Final = 0x20
_PUBLISH_QOS1: Final = 0x32  # PUBLISH, QoS 1; | 0x01 retain, | 0x08 DUP
_PUBACK: Final = 0x40
_PUBACK_WORD: Final = 0x4002  # PUBACK's fixed header: type and remaining length 2
_PINGREQ: Final = b"\xc0\x00"
_PINGRESP: Final = 0xD0
_DISCONNECT: Final = b"\xe0\x00"
_two_bytes = Struct("BB").pack  # bytes((a, b)), twice as fast
_HEADERS: dict[int, Callable[[int, int, int, bytes, int], bytes]] = {}  # see `_header`
_REFUSED: Final = {
    1: "unacceptable protocol version",
    2: "identifier rejected",
    3: "server unavailable",
    4: "bad user name or password",
    5: "not authorised",
}


class ProtocolError(Exception):
    """The broker sent something a publisher-only MQTT 3.1.1 session cannot accept."""


def _header(topic_bytes: int) -> Callable[[int, int, int, bytes, int], bytes]:
    """`pack(first, length_lo, length_hi, topic, mid)`: a PUBLISH's fixed header with a
    two-byte remaining length, its topic (already with its length) and packet id, in one
    `struct` call (the usual message: 128 bytes to 16 KiB). One per topic length."""
    pack = _HEADERS.get(topic_bytes)
    if pack is None:
        pack = _HEADERS[topic_bytes] = Struct(f">BBB{topic_bytes}sH").pack
    return pack


def connect_packet(client_id: str, username: str, password: str, keepalive: int) -> bytes:
    """CONNECT, MQTT 3.1.1: clean session off (the broker keeps the session), no will."""
    return mqtt_wire.connect(client_id, username, password, keepalive=keepalive, mqtt5=False)


class GatewaySession:
    """One fleet gateway's MQTT session; `vin` holds its login (the pool's key).

    `publish_for` takes a car's message: it is kept until the broker acknowledges it
    (`pending` counts those), written now if connected, else after the next CONNACK.
    """

    def __init__(
        self,
        login: str,
        secret: str,
        host: str,
        port: int,
        *,
        keepalive: int = 30,
        vehicles: list[str] | None = None,
    ) -> None:
        self.vin = login
        self.secret = secret
        self.host, self.port = host, port
        self.keepalive = keepalive
        self.vehicles = vehicles if vehicles is not None else []
        self.connected = False
        self.refused: str | None = None
        self.sent = 0
        self.acked = 0
        self._sock: sockets.socket | None = None
        self._events: SocketEvents | None = None
        self._out = bytearray()
        self._in = b""
        self._inflight: dict[int, tuple[bytes, bytes, int]] = {}  # id -> topic, payload, flags
        self._written: set[int] = set()  # ids written on a connection that was then lost
        self._next_id = 0
        self._topics: dict[str, dict[str, bytes]] = {}  # sub-topic -> VIN -> length + topic
        self._wants_write = False
        self._closing = False  # we disconnected on purpose: do not connect again
        self._lost_at: float | None = None
        self._last_out = self._last_in = time.monotonic()

    @property
    def pending(self) -> int:
        return len(self._inflight)

    # --- publishing ------------------------------------------------------------------------

    def publish_for(self, vin: str, subtopic: str, payload: bytes, *, retain: bool = False) -> None:
        """Queue a QoS 1 message of car `vin` on `vehicles/{vin}/{subtopic}`."""
        self.publish_on(self.topic(vin, subtopic), payload, retain=retain)

    def topic(self, vin: str, subtopic: str) -> bytes:
        """`vehicles/{vin}/{subtopic}` as a PUBLISH carries it (length first), for
        `publish_on`; built once per car and sub-topic."""
        by_vin = self._topics.get(subtopic)
        if by_vin is None:
            by_vin = self._topics[subtopic] = {}
        topic = by_vin.get(vin)
        if topic is None:
            topic = by_vin[vin] = mqtt_wire.string(f"vehicles/{vin}/{subtopic}")
        return topic

    def publish_on(self, topic: bytes, payload: bytes, *, retain: bool = False) -> None:
        """`publish_for` with the topic as `topic` returns it (load mode keeps each car's
        telemetry topic at hand: this runs for every message)."""
        inflight = self._inflight
        mid = self._next_id % 0xFFFF + 1
        while mid in inflight:  # 65,535 ids; the fleet's backlog limit keeps far fewer
            mid = mid % 0xFFFF + 1
        self._next_id = mid
        flags = _PUBLISH_QOS1 | 0x01 if retain else _PUBLISH_QOS1
        inflight[mid] = (topic, payload, flags)
        self.sent += 1
        if self.connected:
            out = self._out
            length = len(topic) + 2 + len(payload)
            if 128 <= length < 16384:  # `_append`, inlined for the usual message
                pack = _HEADERS.get(len(topic)) or _header(len(topic))
                out += pack(flags, length & 0x7F | 0x80, length >> 7, topic, mid)
                out += payload
            else:
                self._append(flags, topic, mid, payload)
            if len(out) >= FLUSH_BYTES:
                self._flush()
            elif not self._wants_write:  # the rest goes out at the pool's next select
                self._want_write(True)

    def _append(self, flags: int, topic: bytes, mid: int, payload: bytes) -> None:
        out = self._out
        length = len(topic) + 2 + len(payload)
        if 128 <= length < 16384:  # the usual message: header, topic and id in one pack
            out += _header(len(topic))(flags, length & 0x7F | 0x80, length >> 7, topic, mid)
        else:
            if length < 128:
                out += _two_bytes(flags, length)
            else:
                out.append(flags)
                out += mqtt_wire.varint(length)
            out += topic
            out += mid.to_bytes(2, "big")
        out += payload

    def _flush(self) -> None:
        """Write as much of the output buffer as the socket takes now."""
        sock = self._sock
        if sock is None or not self._out:
            return
        try:
            written = sock.send(self._out)
        except (BlockingIOError, InterruptedError):
            written = 0
        except OSError:
            self._lost()
            return
        if written:
            del self._out[:written]
            self._last_out = time.monotonic()
        self._want_write(bool(self._out))

    def _want_write(self, wanted: bool) -> None:
        if wanted != self._wants_write and self._sock is not None and self._events is not None:
            self._wants_write = wanted
            self._events.interest(self, self._sock, wanted)

    # --- connection ------------------------------------------------------------------------

    def start(self, events: SocketEvents) -> None:
        self._events = events
        self._closing = False
        self._open()

    def restart(self) -> None:
        if self._sock is not None:
            self._drop()
        self._closing = False
        self._open()

    def _open(self) -> None:
        assert self._events is not None
        self._lost_at = None
        try:
            sock = sockets.create_connection((self.host, self.port), timeout=CONNECT_TIMEOUT_S)
        except OSError as exc:
            self.refused = f"cannot connect: {exc}"
            self._lost_at = time.monotonic()
            return
        sock.setblocking(False)
        self._sock = sock
        self._in = b""
        self._wants_write = False
        self._events.watch(self, sock)
        self._out = bytearray(connect_packet(self.vin, self.vin, self.secret, self.keepalive))
        self._last_out = self._last_in = time.monotonic()
        self._flush()

    def disconnect(self) -> None:
        """Send DISCONNECT after what is queued; the pool closes the socket."""
        self._closing = True
        if self._sock is not None and self.connected:
            self._out += _DISCONNECT
            self._flush()
        self.connected = False

    def socket(self) -> sockets.socket | None:
        return self._sock

    def _drop(self) -> None:
        """Close the socket. Everything unacknowledged stays in flight for the next session;
        what was written on this connection is sent again with DUP set."""
        sock, self._sock = self._sock, None
        if self.connected:
            self._written = set(self._inflight)
        self.connected = False
        self._out.clear()
        if sock is not None:
            if self._events is not None:
                self._events.forget(sock)
            with contextlib.suppress(OSError):
                sock.close()

    def _lost(self) -> None:
        self._drop()
        self._lost_at = time.monotonic()

    # --- events from the pool ---------------------------------------------------------------

    def on_writable(self) -> None:
        self._flush()

    def on_readable(self) -> None:
        sock = self._sock
        if sock is None:
            return
        try:
            data = sock.recv(READ_BYTES)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self._lost()
            return
        if not data:  # the broker closed the connection
            self._lost()
            return
        self._last_in = time.monotonic()
        try:
            self._parse(self._in + data if self._in else data)
        except ProtocolError as exc:
            self.refused = str(exc)
            self._lost()

    def _parse(self, data: bytes) -> None:
        """Handle every complete packet in `data`; keep a partial one for the next read."""
        inflight = self._inflight
        end = len(data)
        if not end % 4:  # usually nothing but PUBACKs (40 02 id id): handled in C
            count = end // 4
            words = unpack(f">{2 * count}H", data)
            if words[0::2].count(_PUBACK_WORD) == count:
                before = len(inflight)
                deque(map(inflight.pop, words[1::2], repeat(None, count)), maxlen=0)
                self.acked += before - len(inflight)
                self._in = b""
                return
        acked = 0
        i = 0
        while i < end:
            kind = data[i]
            if kind == _PUBACK and i + 4 <= end and data[i + 1] == 2:  # the common case
                if inflight.pop(data[i + 2] << 8 | data[i + 3], None) is not None:
                    acked += 1
                i += 4
                continue
            length, shift, j = 0, 0, i + 1  # the remaining length, 1-4 bytes
            while True:
                if j >= end:
                    self._in = data[i:]
                    self.acked += acked
                    return
                digit = data[j]
                length |= (digit & 0x7F) << shift
                j += 1
                if not digit & 0x80:
                    break
                shift += 7
                if shift > 21:
                    raise ProtocolError("malformed remaining length from the broker")
            if j + length > end:
                break
            self._packet(kind, data[j : j + length])
            i = j + length
        self._in = data[i:] if i < end else b""
        self.acked += acked

    def _packet(self, kind: int, body: bytes) -> None:
        if kind == _CONNACK and len(body) == 2:
            code = body[1]
            if code:
                self._closing = True  # refused: connecting again would be refused again
                raise ProtocolError(f"connection refused: {_REFUSED.get(code, code)}")
            self.connected, self.refused = True, None
            self._resend()
        elif kind == _PUBACK and len(body) == 2:
            if self._inflight.pop(body[0] << 8 | body[1], None) is not None:
                self.acked += 1
        elif kind == _PINGRESP and not body:
            pass
        else:
            raise ProtocolError(f"unexpected packet 0x{kind:02x} for a publisher")

    def _resend(self) -> None:
        """After CONNACK: everything unacknowledged, oldest first; DUP if written before."""
        written, self._written = self._written, set()
        for mid, (topic, payload, flags) in self._inflight.items():
            self._append(flags | 0x08 if mid in written else flags, topic, mid, payload)
        self._flush()

    def on_second(self) -> None:
        """Keepalive (PINGREQ when nothing was written for half the interval), a dead
        broker (nothing heard for 1.5 intervals), and connecting again after a loss."""
        now = time.monotonic()
        if self._sock is None:
            lost_at = self._lost_at
            if not self._closing and lost_at is not None and now - lost_at >= RECONNECT_S:
                self._open()
            return
        if now - self._last_in > 1.5 * self.keepalive:
            self._lost()
        elif self.connected and now - self._last_out >= self.keepalive / 2:
            self._out += _PINGREQ
            self._flush()
