"""Many simulated vehicles' MQTT sessions, each with its own login, driven from one thread.

A real telematics unit holds one MQTT connection with its own credential and last will. To
simulate thousands of them without a thread each, this module drives paho clients through
paho's external-loop interface (`loop_read`/`loop_write`/`loop_misc`) on one selector. The
simulator steps the vehicles and pumps the pool in the same thread, so nothing is shared
between threads.

The pool drives anything shaped like a :class:`Session` (a socket that reacts to readable
and writable events and to a once-a-second tick): the vehicles' paho :class:`Connection`
and load mode's fleet-gateway sessions (`sim/gateway_session.py`).
"""

import contextlib
import selectors
import socket
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import msgspec
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

OFFLINE = msgspec.json.encode({"online": False})


class SocketEvents(Protocol):
    """How a session tells its pool about its socket (the pool's selector)."""

    def watch(self, session: "Session", sock: object) -> None:
        """A socket was opened: serve its readable events."""
        ...

    def forget(self, sock: object) -> None:
        """The socket is closing: stop serving it."""
        ...

    def interest(self, session: "Session", sock: object, write: bool) -> None:
        """Serve (or stop serving) the socket's writable events too."""
        ...


class Session(Protocol):
    """One MQTT session a :class:`Pool` drives from the simulator's thread."""

    vin: str  # the pool's key (a VIN, or a gateway's login)
    host: str
    port: int
    connected: bool
    refused: str | None  # why the broker refused the last CONNECT, if it did
    acked: int
    sent: int

    @property
    def pending(self) -> int:
        """Messages sent and not yet acknowledged."""
        ...

    def start(self, events: SocketEvents) -> None:
        """Connect (TCP now, the MQTT handshake completes while the pool pumps)."""
        ...

    def restart(self) -> None:
        """Connect again after the connection was lost or dropped."""
        ...

    def disconnect(self) -> None:
        """Begin a graceful disconnect (no will)."""
        ...

    def socket(self) -> object | None:
        """The current socket, if any."""
        ...

    def on_readable(self) -> None: ...

    def on_writable(self) -> None: ...

    def on_second(self) -> None:
        """Keepalives and timeouts, called about once a second."""
        ...


@dataclass
class Connection:
    """One vehicle's MQTT session: client id = username = VIN, last will = offline."""

    vin: str
    secret: str
    host: str
    port: int
    keepalive: int = 30
    client: mqtt.Client = field(init=False)
    connected: bool = field(default=False, init=False)
    refused: str | None = field(default=None, init=False)
    acked: int = field(default=0, init=False)
    sent: int = field(default=0, init=False)
    # Cloud-to-vehicle sub-topics to subscribe to (QoS 1); what arrives waits in `inbox`
    # until the simulator's thread takes it (`take_inbox`).
    listen: tuple[str, ...] = ()
    inbox: list[tuple[str, bytes]] = field(default_factory=list, init=False)

    def __post_init__(self) -> None:
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=self.vin,
            protocol=mqtt.MQTTv311,
            clean_session=False,  # unacknowledged messages are resent after a reconnect
        )
        self.client.username_pw_set(self.vin, self.secret)
        self.client.will_set(self.topic("state"), OFFLINE, qos=1, retain=True)
        self.client.max_inflight_messages_set(100)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_publish = self._on_publish
        self.client.on_message = self._on_message

    def topic(self, subtopic: str) -> str:
        return f"vehicles/{self.vin}/{subtopic}"

    def publish(self, subtopic: str, payload: bytes, *, retain: bool = False) -> None:
        """Queue a QoS 1 message; paho keeps it until PUBACK, across reconnects."""
        self.client.publish(self.topic(subtopic), payload, qos=1, retain=retain)
        self.sent += 1

    @property
    def pending(self) -> int:
        return self.sent - self.acked

    def _on_connect(self, _c: object, _u: object, _f: object, reason: object, _p: object) -> None:
        if getattr(reason, "is_failure", False):
            self.refused = str(reason)
        else:
            self.connected, self.refused = True, None
            if self.listen:
                self.client.subscribe([(self.topic(sub), 1) for sub in self.listen])

    def _on_disconnect(self, *_args: object) -> None:
        self.connected = False

    def _on_publish(self, *_args: object) -> None:
        self.acked += 1

    def _on_message(self, _c: object, _u: object, message: mqtt.MQTTMessage) -> None:
        prefix = self.topic("")
        if message.topic.startswith(prefix):
            self.inbox.append((message.topic[len(prefix) :], bytes(message.payload)))

    def take_inbox(self) -> list[tuple[str, bytes]]:
        """The cloud's messages received since the last call, oldest first."""
        taken, self.inbox = self.inbox, []
        return taken

    # --- Session: paho's external-loop interface ------------------------------------------

    def start(self, events: SocketEvents) -> None:
        client = self.client
        client.on_socket_open = lambda _c, _u, sock: events.watch(self, sock)
        client.on_socket_close = lambda _c, _u, sock: events.forget(sock)
        client.on_socket_register_write = lambda _c, _u, sock: events.interest(self, sock, True)
        client.on_socket_unregister_write = lambda _c, _u, sock: events.interest(self, sock, False)
        client.connect(self.host, self.port, keepalive=self.keepalive)

    def restart(self) -> None:
        self.client.reconnect()

    def disconnect(self) -> None:
        self.client.disconnect()

    def socket(self) -> object | None:
        return self.client.socket()

    def on_readable(self) -> None:
        self.client.loop_read()

    def on_writable(self) -> None:
        self.client.loop_write()

    def on_second(self) -> None:
        self.client.loop_misc()


def no_delay(sock: object) -> None:
    """TCP_NODELAY: a vehicle's small MQTT packets go out at once. With Nagle on, an answer
    sent right after a PUBACK (a command's `accepted`) waits for the broker's delayed ACK,
    about 40 ms on Linux."""
    if isinstance(sock, socket.socket):
        with contextlib.suppress(OSError):  # not TCP (a Unix socket in a test): nothing to do
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class Pool:
    """Drives the sockets of many sessions (`Connection`s, gateways) from the calling thread."""

    def __init__(self) -> None:
        self._selector = selectors.DefaultSelector()
        self._connections: dict[str, Session] = {}
        self._last_misc = 0.0

    def __len__(self) -> int:
        return len(self._connections)

    def open(self, conn: Session) -> None:
        """Connect (TCP now, MQTT CONNECT completes while pumping)."""
        self._connections[conn.vin] = conn
        conn.start(self)

    def close(self, conn: Session, *, graceful: bool = True) -> None:
        """Disconnect: gracefully (no will), or drop the socket so the broker sends the will."""
        if graceful:
            conn.disconnect()
            self.pump(0.05)
        sock = conn.socket()
        if sock is not None:
            self.forget(sock)
            sock.close()  # type: ignore[attr-defined]
        conn.connected = False

    def reconnect(self, conn: Session) -> None:
        conn.restart()

    def watch(self, session: Session, sock: object) -> None:
        no_delay(sock)
        self._selector.register(sock, selectors.EVENT_READ, session)  # type: ignore[arg-type]

    def forget(self, sock: object) -> None:
        with contextlib.suppress(KeyError, ValueError):  # already gone
            self._selector.unregister(sock)  # type: ignore[arg-type]

    def interest(self, session: Session, sock: object, write: bool) -> None:
        events = selectors.EVENT_READ | (selectors.EVENT_WRITE if write else 0)
        with contextlib.suppress(KeyError, ValueError):  # closed meanwhile
            self._selector.modify(sock, events, session)  # type: ignore[arg-type]

    def pump(self, timeout_s: float) -> None:
        """Serve socket events for up to `timeout_s`, and keepalives once a second."""
        deadline = time.monotonic() + timeout_s
        while True:
            remaining = deadline - time.monotonic()
            if self._connections and self._selector.get_map():
                for key, events in self._selector.select(max(0.0, min(remaining, 0.2))):
                    conn: Session = key.data
                    if events & selectors.EVENT_READ:
                        conn.on_readable()
                    if events & selectors.EVENT_WRITE:
                        conn.on_writable()
            elif remaining > 0:
                time.sleep(min(remaining, 0.05))
            now = time.monotonic()
            if now - self._last_misc >= 1.0:
                self._last_misc = now
                for conn in self._connections.values():
                    conn.on_second()
            if time.monotonic() >= deadline:
                return

    def until(self, condition: Callable[[], bool], timeout_s: float) -> bool:
        """Pump until `condition()` holds or `timeout_s` passes; say which."""
        deadline = time.monotonic() + timeout_s
        while not condition():
            if time.monotonic() >= deadline:
                return False
            self.pump(0.05)
        return True

    def connect_all(self, conns: Sequence[Session], timeout_s: float, noun: str) -> None:
        """Open `conns` and pump until all are connected; else raise ConnectionError saying
        how many (`noun`: "vehicles", "gateways") could not, and why the broker refused one."""
        for conn in conns:
            self.open(conn)
        if not self.until(lambda: all(c.connected for c in conns), timeout_s):
            refused = [c for c in conns if c.refused]
            first = conns[0] if conns else None
            where = f"{first.host}:{first.port}" if first else "the broker"
            raise ConnectionError(
                f"{sum(not c.connected for c in conns)} {noun} could not connect to {where}"
                + (f" (e.g. {refused[0].vin}: {refused[0].refused})" if refused else "")
            )

    @property
    def connections(self) -> list[Session]:
        return list(self._connections.values())
