"""A lean MQTT 3.1.1 QoS 1 publisher for the bench's load generators: one socket, one thread.

Why: paho costs ~70-100 µs of CPU per QoS 1 publish on the bench machine (an
`MQTTMessageInfo` with a `threading.Condition` per message, one `send` per packet, three
`recv` calls and a callback per PUBACK, a network thread contending for the GIL). At the
ingest target (12,500 msg/s) paho publishers alone would need most of one of the machine's two
cores, and the bench would measure its own load generators. Here a PUBLISH is its bytes
appended to one output buffer, written with one `send` per ~64 KiB, and PUBACKs are counted
from one `recv` of up to 256 KiB.

What: connect (clean session, user name and password; any client id, so several processes
can share the fleet gateway's credential), queue QoS 1 PUBLISHes, write them, count PUBACKs,
keep the connection alive, disconnect. Nothing is subscribed. A lost connection is an error
(`PublisherLost`, with the number of unacknowledged messages), not a silent reconnect: the
bench's zero-loss accounting counts what the broker acknowledged, so a publisher that lost
its connection fails the phase instead of guessing.

`autocloud.sim.gateway_session.GatewaySession` is the simulator's equivalent, but it logs in
with client id = user name and a persistent session, and it is driven by the simulator's pool;
the bench runs several processes on one credential and paces messages itself.
"""

from __future__ import annotations

import contextlib
import select
import socket
import time
from struct import unpack
from typing import Final

from autocloud.adapters import mqtt_wire as wire

FLUSH_BYTES: Final = 64 * 1024  # the caller writes the output buffer once it holds this much
READ_BYTES: Final = 256 * 1024
MAX_WINDOW: Final = 65_000  # below the 65,535 packet ids, so an id is free when reused

_PUBLISH_QOS1: Final = 0x32
_PUBACK_WORD: Final = 0x4002  # PUBACK's fixed header: type 4, remaining length 2
_CONNACK: Final = 0x20
_PUBACK: Final = 0x40
_PINGRESP: Final = 0xD0


class PublisherLost(Exception):
    """The connection failed, or the broker refused or sent what a publisher cannot accept."""


def topic_bytes(topic: str) -> bytes:
    """A topic as it goes into a PUBLISH (two-byte length, UTF-8): compute once per topic."""
    return wire.string(topic)


class LeanPublisher:
    """One QoS 1 publishing connection. Not thread-safe: one thread calls everything.

    `publish` only queues; `flush` writes what the socket takes without blocking; `poll`
    waits up to a timeout for PUBACKs (writing the rest of the output meanwhile). The caller
    bounds the unacknowledged messages (`pending`) to at most `MAX_WINDOW`.
    """

    def __init__(
        self,
        host: str,
        port: int,
        client_id: str,
        username: str,
        password: str,
        *,
        keepalive: int = 60,
        nodelay: bool = False,
    ) -> None:
        self.host, self.port = host, port
        self.client_id = client_id
        self.username, self.password = username, password
        self.keepalive = keepalive
        # Nagle's algorithm stays on by default, as in paho and most TCUs' stacks. With
        # TCP_NODELAY a paced publisher writes one PUBLISH per segment, and a Mosquitto 2.0.11
        # busy with a consumer's backlog then acknowledged a third of the pace (publishers
        # waited 17 of 20 s on PUBACKs); with Nagle on, all of it (BENCHMARKS.md, "Publishers").
        self.nodelay = nodelay
        self.sent = 0
        self.acked = 0
        self.last_ack = 0.0  # time.time() of the last PUBACK
        self.flushed_at = 0.0  # time.monotonic() of the last write
        self._sock: socket.socket | None = None
        self._out = bytearray()
        self._in = b""
        self._inflight: set[int] = set()
        self._mid = 0

    @property
    def pending(self) -> int:
        """Messages queued or written and not acknowledged yet."""
        return len(self._inflight)

    @property
    def buffered(self) -> int:
        """Bytes queued and not written yet."""
        return len(self._out)

    # --- connection ------------------------------------------------------------------------

    def connect(self, timeout_s: float = 10.0) -> None:
        """Open the TCP connection and wait for an accepting CONNACK."""
        try:
            sock = socket.create_connection((self.host, self.port), timeout=timeout_s)
        except OSError as exc:
            raise PublisherLost(f"cannot connect to {self.host}:{self.port}: {exc}") from exc
        if self.nodelay:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        packet = wire.connect(
            self.client_id,
            self.username,
            self.password,
            keepalive=self.keepalive,
            mqtt5=False,
            clean=True,
        )
        deadline = time.monotonic() + timeout_s
        try:
            sock.sendall(packet)
            data = b""
            while len(data) < 4:
                sock.settimeout(max(0.01, deadline - time.monotonic()))
                chunk = sock.recv(4 - len(data))
                if not chunk:
                    raise PublisherLost("the broker closed the connection before CONNACK")
                data += chunk
        except OSError as exc:
            sock.close()
            raise PublisherLost(f"no CONNACK within {timeout_s:g} s: {exc}") from exc
        if data[0] != _CONNACK or data[1] != 2:
            sock.close()
            raise PublisherLost(f"expected CONNACK, got {data.hex()}")
        if data[3]:
            sock.close()
            raise PublisherLost(f"connection refused: {wire.refusal(data[3], False)}")
        sock.setblocking(False)
        self._sock = sock
        self.flushed_at = time.monotonic()

    def close(self) -> None:
        """DISCONNECT (after what is queued, if the socket takes it) and close."""
        sock, self._sock = self._sock, None
        if sock is None:
            return
        with contextlib.suppress(OSError):
            sock.setblocking(True)
            sock.settimeout(5.0)
            sock.sendall(bytes(self._out) + wire.DISCONNECT_PACKET)
        self._out.clear()
        with contextlib.suppress(OSError):
            sock.close()

    def _lost(self, why: str) -> PublisherLost:
        sock, self._sock = self._sock, None
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.close()
        return PublisherLost(f"{why} ({self.pending} of {self.sent} messages unacknowledged)")

    # --- publishing ------------------------------------------------------------------------

    def publish(self, topic: bytes, payload: bytes) -> None:
        """Queue one QoS 1 PUBLISH; `topic` from `topic_bytes`."""
        mid = self._mid % 0xFFFF + 1
        self._mid = mid
        self._inflight.add(mid)
        self.sent += 1
        out = self._out
        length = len(topic) + 2 + len(payload)
        if length < 128:
            out += bytes((_PUBLISH_QOS1, length))
        elif length < 16384:
            out += bytes((_PUBLISH_QOS1, length & 0x7F | 0x80, length >> 7))
        else:
            out.append(_PUBLISH_QOS1)
            out += wire.varint(length)
        out += topic
        out += mid.to_bytes(2, "big")
        out += payload

    def flush(self) -> None:
        """Write as much of the output buffer as the socket takes now."""
        sock = self._sock
        if sock is None:
            raise self._lost("not connected")
        if not self._out:
            return
        try:
            written = sock.send(self._out)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            raise self._lost(f"connection lost: {exc}") from exc
        del self._out[:written]
        self.flushed_at = time.monotonic()

    def poll(self, timeout_s: float) -> None:
        """Wait up to `timeout_s` for the broker; handle what arrives, write what is queued,
        and send a PINGREQ when nothing was written for half the keepalive interval."""
        sock = self._sock
        if sock is None:
            raise self._lost("not connected")
        if time.monotonic() - self.flushed_at >= self.keepalive / 2 and not self._out:
            self._out += wire.PINGREQ_PACKET
        writes = [sock] if self._out else []
        try:
            readable, writable, _ = select.select([sock], writes, [], max(0.0, timeout_s))
        except InterruptedError:
            return
        if writable:
            self.flush()
        if readable:
            self.read()

    def read(self) -> None:
        """Take what the socket holds now and count the PUBACKs in it."""
        sock = self._sock
        if sock is None:
            raise self._lost("not connected")
        try:
            data = sock.recv(READ_BYTES)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            raise self._lost(f"connection lost: {exc}") from exc
        if not data:
            raise self._lost("the broker closed the connection")
        self._parse(self._in + data if self._in else data)

    def _parse(self, data: bytes) -> None:
        inflight = self._inflight
        before = len(inflight)
        end = len(data)
        if not end % 4:  # usually nothing but PUBACKs (40 02 id id): counted in C
            words = unpack(f">{end // 2}H", data)
            if words[0::2].count(_PUBACK_WORD) == end // 4:
                inflight.difference_update(words[1::2])
                self._in = b""
                self._acked(before - len(inflight))
                return
        i = 0
        while i + 2 <= end:
            kind, length = data[i], data[i + 1]
            if length & 0x80:
                raise self._lost(f"unexpected packet 0x{kind:02x} for a publisher")
            if i + 2 + length > end:
                break
            if kind == _PUBACK and length == 2:
                inflight.discard(data[i + 2] << 8 | data[i + 3])
            elif not (kind == _PINGRESP and length == 0):
                raise self._lost(f"unexpected packet 0x{kind:02x} for a publisher")
            i += 2 + length
        self._in = data[i:]
        self._acked(before - len(inflight))

    def _acked(self, count: int) -> None:
        if count:
            self.acked += count
            self.last_ack = time.time()

    def wait_acked(self, timeout_s: float) -> bool:
        """Write everything and wait until every message is acknowledged (or time is up)."""
        deadline = time.monotonic() + timeout_s
        while self._inflight:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            self.poll(min(left, 1.0))
        return True
