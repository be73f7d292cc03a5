"""The `VehicleLink` on one MQTT session of the platform's own, to Mosquitto or embedded amqtt.

The session is persistent (clean start off; MQTT 5 with a session that never expires), and QoS 1
messages are acknowledged only when the ingest says so (`ack`, after the commit), so a message
the platform has not made durable stays with the broker and is redelivered after a crash. With
Mosquitto it speaks MQTT 5 with a receive window (`RECEIVE_MAXIMUM`) and a shared subscription,
so several consumer processes can split the load; amqtt speaks MQTT 3.1.1 only.

Every PUBLISH received is one entry in the broker's in-flight list and gets exactly one PUBACK,
after its own copy is durable, and never one on a later connection (the broker sends what is
still unacknowledged again, as DUP, and that copy is acknowledged instead). Mosquitto 2.0.11
does not keep to the window: each PUBACK lets it move up to Receive Maximum queued messages into
flight, and past 65,535 it sends ids that are still in flight. Two deliveries with one id are
two entries, and Mosquitto removes the first match per PUBACK, so they are acknowledged in
arrival order. The link also hands the sink no more than the window: what the broker sends
beyond it stays unread (TCP holds the broker back) until acknowledgements make room. See
docs/architecture.md, "The platform's MQTT session".

One reader thread receives in large chunks, cuts them into packets (`adapters/mqtt_wire.py`)
and hands each PUBLISH to the sink; the same thread keeps the connection alive and connects
again after a loss. Writes (acknowledgements, messages to vehicles, pings) share one lock.
Why not paho: see `mqtt_wire`'s docstring and docs/architecture.md.
"""

from __future__ import annotations

import contextlib
import logging
import select
import socket
import struct
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence

from autocloud.adapters import mqtt_wire as wire
from autocloud.domain.errors import StoreUnavailable
from autocloud.domain.protocol import TOPIC_ROOT, Topic
from autocloud.ports.link import Inbound

log = logging.getLogger(__name__)

SHARE_GROUP = "autocloud"
RECEIVE_MAXIMUM = 10_000  # five ingest batches; far from 65,535, where packet ids wrap
SESSION_NEVER_EXPIRES = 0xFFFFFFFF  # MQTT 5: the broker keeps the session until told otherwise
KEEPALIVE_S = 30
READ_BYTES = 256 * 1024
POLL_MS = 1000  # how often an idle reader looks at the keepalive clock
SEND_TIMEOUT_S = 10  # a broker that takes nothing for this long is lost
RECONNECT_S = (1.0, 5.0)  # first and longest wait between attempts
SUBSCRIBE_ID = 1


def subscriptions(shared: bool, topics: Iterable[Topic] = tuple(Topic)) -> list[tuple[str, int]]:
    """Topic filters of the given vehicle-to-cloud sub-topics (all by default)."""
    filters = [f"{TOPIC_ROOT}/+/{t.value}" for t in topics]
    if shared:
        filters = [f"$share/{SHARE_GROUP}/{f}" for f in filters]
    return [(f, 1) for f in filters]


class _Refused(Exception):
    """The broker refused the session: connecting again at once would be refused again."""


class MqttLink:
    """Receives vehicle messages through a broker and publishes to vehicles."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        username: str,
        password: str,
        client_id: str = "autocloud-ingest-0",
        mqtt5: bool = True,
        topics: Iterable[Topic] = tuple(Topic),
        manual_ack: bool = True,
        connect_timeout_s: float = 10.0,
        keepalive_s: int = KEEPALIVE_S,
    ) -> None:
        self._host, self._port = host, port
        self._username, self._password, self._client_id = username, password, client_id
        self._mqtt5 = mqtt5
        self._filters = subscriptions(mqtt5, tuple(topics))
        self._manual_ack = manual_ack
        self._timeout = connect_timeout_s
        self._keepalive = keepalive_s
        self._sink: Callable[[Inbound], None] | None = None
        self._lock = threading.Lock()  # the socket's writes and the state below
        self._sock: socket.socket | None = None
        # Inbound QoS 1 deliveries of this connection, by packet id: a delivery's token is
        # (id, serial); tokens below `_first_serial` are from an earlier connection and void.
        self._room = threading.Condition(self._lock)  # notified when acks free the window
        self._hold = RECEIVE_MAXIMUM  # deliveries the sink may hold unacknowledged
        self._serial = self._first_serial = 0
        self._pending: dict[int, int] = {}  # id -> serial of its oldest unacknowledged delivery
        self._later: dict[int, deque[int]] = {}  # id -> newer deliveries with the id (reused)
        self._done: set[int] = set()  # serials durable but behind an older one of their id
        self._outstanding = 0  # deliveries not acknowledged yet
        self._parked: deque[wire.Publish] = deque()  # received beyond the window, not delivered
        self._inflight: dict[int, bytes] = {}  # outbound packet id -> PUBLISH without DUP
        self._waiting: deque[tuple[str, bytes, bool]] = deque()  # beyond the broker's window
        self._window = RECEIVE_MAXIMUM
        self._next_mid = 0
        self._last_out = self._last_in = time.monotonic()
        self._ping_sent: float | None = None
        self._closing = threading.Event()
        self._connected = threading.Event()
        self._thread: threading.Thread | None = None
        self._buffer = bytearray()
        self._poll = select.poll()
        self.refused: str | None = None

    # --- the port --------------------------------------------------------------------------
    def start(self, sink: Callable[[Inbound], None]) -> None:
        """Connect (or raise `StoreUnavailable` saying why not), then receive on a thread."""
        self._sink = sink
        self._closing.clear()
        try:
            self._connect()
        except (OSError, wire.WireError, _Refused) as exc:
            raise StoreUnavailable(
                f"MQTT broker at {self._host}:{self._port} did not accept the platform: {exc}"
            ) from None
        self._thread = threading.Thread(target=self._run, name="mqtt-link", daemon=True)
        self._thread.start()

    def ack(self, messages: Sequence[Inbound]) -> None:
        """PUBACK each QoS 1 delivery of this connection once, when it and every earlier
        delivery with the same packet id are acknowledged here (the broker removes the first
        entry with the id). Deliveries of an earlier connection are skipped: the broker sent
        them again on this one. Acknowledging a message twice is harmless."""
        if not self._manual_ack:
            return
        mids: list[int] = []
        with self._lock:
            first, pending, later = self._first_serial, self._pending, self._later
            for message in messages:
                token = message.token
                if message.qos == 0 or not isinstance(token, tuple) or token[1] < first:
                    continue  # QoS 0, or delivered on an earlier connection
                mid, serial = token
                if pending.get(mid) == serial:
                    self._release_locked(mid, mids)
                elif (newer := later.get(mid)) is not None and serial in newer:
                    self._done.add(serial)  # an older delivery with its id is not durable yet
            if mids:
                self._outstanding -= len(mids)
                self._write_locked(wire.pubacks(mids))
                self._room.notify()

    def send(self, vin: str, subtopic: str, payload: bytes, *, retain: bool = False) -> None:
        """Queue a QoS 1 message to a vehicle; it is sent again after a lost connection
        until the broker acknowledges it."""
        if self._closing.is_set() or self._thread is None:
            raise StoreUnavailable(f"could not queue a message to {vin}: the link is stopped")
        topic = f"{TOPIC_ROOT}/{vin}/{subtopic}"
        with self._lock:
            if len(self._inflight) >= self._window:
                self._waiting.append((topic, payload, retain))
            else:
                self._publish_locked(topic, payload, retain)

    def stop(self) -> None:
        """Disconnect cleanly; unacknowledged messages stay with the broker for redelivery."""
        self._closing.set()
        with self._lock:
            self._room.notify_all()
            if self._sock is not None:
                self._write_locked(wire.DISCONNECT_PACKET)
                with contextlib.suppress(OSError):
                    self._sock.shutdown(socket.SHUT_RDWR)
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=5)
        self._close()

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    # --- connection ------------------------------------------------------------------------
    def _connect(self) -> None:
        """Open the socket, CONNECT, wait for CONNACK, SUBSCRIBE, and resend what is in flight."""
        hold = RECEIVE_MAXIMUM  # read here, so a bench can change it before `start`
        sock = socket.create_connection((self._host, self._port), timeout=self._timeout)
        try:
            # A command published right after a PUBACK must not wait for a delayed ACK (Nagle).
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sock.sendall(
                wire.connect(
                    self._client_id,
                    self._username,
                    self._password,
                    keepalive=self._keepalive,
                    mqtt5=self._mqtt5,
                    session_expiry=SESSION_NEVER_EXPIRES,
                    receive_maximum=hold,
                )
            )
            buffer = bytearray()
            publishes: list[wire.Publish] = []
            others: list[wire.Packet] = []
            while not others:
                chunk = sock.recv(READ_BYTES)
                if not chunk:
                    raise OSError("the broker closed the connection before CONNACK")
                buffer += chunk
                wire.read_packets(buffer, self._mqtt5, publishes, others)
            first = others.pop(0)
            if first.kind != wire.CONNACK:
                raise wire.WireError(f"expected CONNACK, got packet type {first.kind}")
            ack = wire.connack(first.body, self._mqtt5)
            if ack.code:
                self.refused = wire.refusal(ack.code, self._mqtt5) + (
                    f" ({ack.reason})" if ack.reason else ""
                )
                raise _Refused(self.refused)
        except BaseException:
            sock.close()
            raise
        sock.settimeout(None)  # blocking, but a write that stalls fails (and reconnects)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, struct.pack("ll", SEND_TIMEOUT_S, 0))
        self._poll = select.poll()
        self._poll.register(sock, select.POLLIN)
        self._buffer = buffer
        with self._lock:
            self._sock = sock
            self.refused = None
            # What was delivered before is void: the broker forgot it (no session) or sends
            # it again now; acknowledging the old copies too would ack ids twice.
            self._first_serial = self._serial + 1
            self._pending.clear()
            self._later.clear()
            self._done.clear()
            self._parked.clear()
            self._outstanding = 0
            self._hold = hold
            self._window = max(1, ack.receive_maximum)
            self._last_out = self._last_in = time.monotonic()
            self._ping_sent = None
            self._write_locked(wire.subscribe(SUBSCRIBE_ID, self._filters, mqtt5=self._mqtt5))
            for packet in self._inflight.values():
                self._write_locked(bytes((packet[0] | 0x08,)) + packet[1:])  # DUP
        self._connected.set()
        self._deliver(publishes)  # a resumed session's messages may follow CONNACK at once
        self._handle(others)

    def _run(self) -> None:
        delay = RECONNECT_S[0]
        while not self._closing.is_set():
            if self._sock is None:
                if self._closing.wait(delay):
                    return
                try:
                    self._connect()
                    delay = RECONNECT_S[0]
                    log.info("platform MQTT session to %s:%s is back", self._host, self._port)
                except (OSError, wire.WireError, _Refused) as exc:
                    log.warning("cannot reconnect to the MQTT broker (%s); retrying", exc)
                    delay = min(delay * 2, RECONNECT_S[1])
                continue
            try:
                self._receive(self._sock)
            except (OSError, wire.WireError) as exc:
                if not self._closing.is_set():
                    log.warning("platform lost the MQTT broker (%s); reconnecting", exc)
                self._lost()

    def _receive(self, sock: socket.socket) -> None:
        if self._parked:  # the window is full: read nothing more until acks make room
            if self._wait_for_room():
                self._deliver(())
            else:
                self._tick(listening=False)
            return
        if not self._poll.poll(POLL_MS):
            self._tick()
            return
        chunk = sock.recv(READ_BYTES)
        if not chunk:
            raise OSError("the broker closed the connection")
        self._last_in = time.monotonic()
        self._ping_sent = None
        buffer = self._buffer
        buffer += chunk
        publishes: list[wire.Publish] = []
        others: list[wire.Packet] = []
        wire.read_packets(buffer, self._mqtt5, publishes, others)
        if publishes:
            self._deliver(publishes)
        if others:
            self._handle(others)
        if self._last_in - self._last_out >= self._keepalive / 2:
            self._tick()

    def _wait_for_room(self) -> bool:
        with self._room:
            if self._outstanding >= self._hold:
                self._room.wait(POLL_MS / 1000)
            return self._outstanding < self._hold

    def _deliver(self, publishes: Sequence[wire.Publish]) -> None:
        """Hand the sink what fits in the window (QoS 1 deliveries not yet acknowledged), in
        order, each with its token; park the rest until acks make room."""
        sink = self._sink
        assert sink is not None
        received_ms = time.time_ns() // 1_000_000
        if self._manual_ack:
            ready: list[Inbound] = []
            with self._lock:
                parked = self._parked
                if parked:  # older ones first
                    parked.extend(publishes)
                    publishes = list(parked)
                    parked.clear()
                room = self._hold - self._outstanding
                serial, pending, later = self._serial, self._pending, self._later
                taken = 0
                for p in publishes:
                    token = None
                    if p.qos:
                        mid = p.mid
                        if p.dup and not self._mqtt5 and mid in pending:
                            # MQTT 3.1.1 allows a resend within the connection: the same entry.
                            newer = later.get(mid)
                            token = (mid, newer[-1] if newer else pending[mid])
                        elif room <= 0:
                            break
                        else:
                            serial += 1
                            room -= 1
                            if mid in pending:  # the broker reused an id still in flight
                                later.setdefault(mid, deque()).append(serial)
                            else:
                                pending[mid] = serial
                            token = (mid, serial)
                    ready.append(
                        Inbound(
                            p.topic, p.payload, received_ms, p.qos, p.retain, p.content_type, token
                        )
                    )
                    taken += 1
                if taken < len(publishes):
                    parked.extend(publishes[taken:])
                self._serial = serial
                self._outstanding = self._hold - room
            for message in ready:
                sink(message)
            return
        for p in publishes:
            sink(Inbound(p.topic, p.payload, received_ms, p.qos, p.retain, p.content_type))
        mids = [p.mid for p in publishes if p.qos]
        if mids:
            with self._lock:
                self._write_locked(wire.pubacks(mids))

    def _handle(self, packets: list[wire.Packet]) -> None:
        for packet in packets:
            kind = packet.kind
            if kind == wire.PUBACK:
                mid, code = wire.puback_of(packet.body)
                if code >= 0x80:
                    log.warning("broker refused a message to a vehicle (reason 0x%02x)", code)
                with self._lock:
                    if self._inflight.pop(mid, None) is not None and self._waiting:
                        self._publish_locked(*self._waiting.popleft())
            elif kind == wire.SUBACK:
                _, codes = wire.suback_codes(packet.body, self._mqtt5)
                for (topic_filter, _q), code in zip(self._filters, codes, strict=False):
                    if code >= 0x80:
                        log.error(
                            "broker refused the platform's subscription to %s: %s",
                            topic_filter,
                            wire.refusal(code, self._mqtt5),
                        )
            elif kind == wire.DISCONNECT:
                code = packet.body[0] if packet.body else 0
                raise OSError(f"the broker disconnected the platform ({wire.refusal(code, True)})")
            elif kind != wire.PINGRESP:
                raise wire.WireError(f"unexpected packet type {kind} for the platform's session")

    def _tick(self, *, listening: bool = True) -> None:
        """Keepalive: ping when nothing was written for half the interval; a broker that
        did not answer a ping within the interval is lost (unless the link is not reading
        because its window is full: then the answer waits unread)."""
        now = time.monotonic()
        if not listening:
            self._ping_sent = None
        elif self._ping_sent is not None and now - self._ping_sent > self._keepalive:
            raise OSError("the broker did not answer a ping")
        if now - self._last_out >= self._keepalive / 2:
            with self._lock:
                self._write_locked(wire.PINGREQ_PACKET)
            if self._ping_sent is None and listening:
                self._ping_sent = now

    def _lost(self) -> None:
        self._connected.clear()
        self._close()

    def _close(self) -> None:
        with self._lock:
            sock, self._sock = self._sock, None
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.close()

    # --- bookkeeping and writing (caller holds the lock) --------------------------------------
    def _release_locked(self, mid: int, mids: list[int]) -> None:
        """The oldest delivery with `mid` is durable: PUBACK it, then every newer delivery
        with the id that was already durable, up to the first that is not."""
        mids.append(mid)
        newer = self._later.get(mid)
        while newer:
            serial = newer.popleft()
            if serial not in self._done:
                self._pending[mid] = serial
                if not newer:
                    del self._later[mid]
                return
            self._done.discard(serial)
            mids.append(mid)
        self._later.pop(mid, None)
        del self._pending[mid]

    def _write_locked(self, data: bytes) -> None:
        sock = self._sock
        if sock is None:
            return  # lost: acks are void, messages to vehicles go again after reconnecting
        try:
            sock.sendall(data)
            self._last_out = time.monotonic()
        except OSError:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)  # the reader notices and reconnects

    def _publish_locked(self, topic: str, payload: bytes, retain: bool) -> None:
        inflight = self._inflight
        mid = self._next_mid % 0xFFFF + 1
        while mid in inflight:
            mid = mid % 0xFFFF + 1
        self._next_mid = mid
        packet = wire.publish(topic, payload, mid, retain=retain, dup=False, mqtt5=self._mqtt5)
        inflight[mid] = packet
        self._write_locked(packet)
