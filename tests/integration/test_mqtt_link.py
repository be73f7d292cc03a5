"""The platform's MQTT session (`MqttLink`) against a real Mosquitto: acknowledgement only on
`ack`, redelivery of what was not acknowledged, one PUBACK per delivery (also when Mosquitto
reuses a packet id still in flight), the link's own receive window, messages to vehicles, the
broker's receive window, reconnection after the broker restarts, and refusals that say why."""

from __future__ import annotations

import getpass
import queue
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from autocloud.adapters import mqtt_link, mqtt_wire
from autocloud.adapters.mqtt_link import MqttLink
from autocloud.domain.errors import StoreUnavailable
from autocloud.ports.link import Inbound
from tests.support.mosquitto import _stop, _wait_until_listening, free_port, mosquitto_binary

WAIT_S = 10.0


class Broker:
    """A plain Mosquitto (anonymous, MQTT 5) that a test can stop and start on one port."""

    def __init__(self, directory: Path, extra: str = "") -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.directory, self.port = directory, free_port()
        self.config = directory / "mosquitto.conf"
        self.config.write_text(
            f"listener {self.port} 127.0.0.1\nallow_anonymous true\n"
            f"persistence true\npersistence_location {directory}/\n"
            f"max_queued_messages 0\nuser {getpass.getuser()}\n{extra}"
        )
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with (self.directory / "stderr.log").open("ab") as stderr:
            self._process = subprocess.Popen(
                [mosquitto_binary(), "-c", str(self.config)],
                stdout=subprocess.DEVNULL,
                stderr=stderr,
            )
        _wait_until_listening(self._process, "127.0.0.1", self.port, self.directory)

    def stop(self) -> None:
        if self._process is not None:
            _stop(self._process)  # SIGTERM: Mosquitto saves its sessions first
            self._process = None


@contextmanager
def broker(tmp_path: Path, extra: str = "") -> Iterator[Broker]:
    instance = Broker(tmp_path / "broker", extra)
    instance.start()
    try:
        yield instance
    finally:
        instance.stop()


class Vehicle:
    """A paho MQTT 5 client standing in for a car: publishes and collects what it receives."""

    def __init__(self, port: int, client_id: str = "car") -> None:
        self.inbox: queue.Queue[tuple[str, bytes]] = queue.Queue()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id, protocol=mqtt.MQTTv5)
        self.client.on_message = lambda _c, _u, m: self.inbox.put((m.topic, bytes(m.payload)))
        self.client.reconnect_delay_set(0.2, 1)  # type: ignore[arg-type]
        props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        props.SessionExpiryInterval = 300  # the session outlives a broker restart
        self.client.connect("127.0.0.1", port, properties=props)
        self.client.loop_start()

    def publish(self, topic: str, payload: bytes, content_type: str | None = None) -> None:
        props = None
        if content_type is not None:
            props = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
            props.ContentType = content_type
        self.client.publish(topic, payload, qos=1, properties=props).wait_for_publish(WAIT_S)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


class Collect:
    """A sink that keeps every message and lets a test wait for a count."""

    def __init__(self) -> None:
        self.messages: list[Inbound] = []
        self._changed = threading.Condition()

    def __call__(self, message: Inbound) -> None:
        with self._changed:
            self.messages.append(message)
            self._changed.notify_all()

    def wait(self, count: int, timeout: float = WAIT_S) -> list[Inbound]:
        with self._changed:
            assert self._changed.wait_for(lambda: len(self.messages) >= count, timeout), (
                f"{len(self.messages)} of {count} messages arrived"
            )
            return list(self.messages)


def _link(port: int, **kwargs: object) -> MqttLink:
    return MqttLink("127.0.0.1", port, username="platform", password="x", **kwargs)  # type: ignore[arg-type]


def test_messages_arrive_and_only_unacknowledged_ones_come_again(tmp_path: Path) -> None:
    with broker(tmp_path) as b:
        first, collect = _link(b.port), Collect()
        first.start(collect)
        car = Vehicle(b.port)
        try:
            for i in range(10):
                car.publish("vehicles/V1/telemetry", f"m{i}".encode(), "application/json")
            got = collect.wait(10)
            assert [m.payload for m in got] == [f"m{i}".encode() for i in range(10)]
            assert {m.content_type for m in got} == {"application/json"}
            assert all(m.qos == 1 and m.topic == "vehicles/V1/telemetry" for m in got)
            first.ack(got[:6])  # the other four were never made durable
            time.sleep(0.3)
            first.stop()

            again, collect2 = _link(b.port), Collect()
            again.start(collect2)
            redelivered = collect2.wait(4)
            assert sorted(m.payload for m in redelivered) == [b"m6", b"m7", b"m8", b"m9"]
            again.ack(redelivered)
            time.sleep(0.3)
            again.stop()

            third, collect3 = _link(b.port), Collect()
            third.start(collect3)
            time.sleep(1.0)
            assert collect3.messages == []
            third.stop()
        finally:
            car.close()


class Pubacks:
    """Records the packet ids of every PUBACK the link writes (a wrapper of `mqtt_wire.pubacks`)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.mids: list[int] = []
        original = mqtt_wire.pubacks

        def pubacks(mids: list[int]) -> bytes:
            self.mids.extend(mids)
            return original(mids)

        monkeypatch.setattr(mqtt_wire, "pubacks", pubacks)


def _publish(mid: int, payload: bytes, *, dup: bool = False) -> mqtt_wire.Publish:
    return mqtt_wire.Publish("vehicles/V1/telemetry", payload, 1, False, dup, mid, None)


def test_deliveries_with_one_packet_id_are_acknowledged_once_each_in_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Mosquitto 2.0.11 sends a new message with an id still in flight: two entries, and each
    PUBACK removes the first. So: one PUBACK per delivery, the second only after the first's
    copy is durable, none twice, none for a delivery of an earlier connection."""
    sent = Pubacks(monkeypatch)
    with broker(tmp_path) as b:
        link, collect = _link(b.port), Collect()
        link.start(collect)
        try:
            link._deliver([_publish(7, b"first"), _publish(7, b"second")])
            first, second = collect.wait(2)
            assert first.token != second.token
            link.ack([second])  # durable, but the broker would remove `first` for it
            assert sent.mids == []
            link.ack([first])
            assert sent.mids == [7, 7]
            link.ack([first, second])  # acknowledged again: nothing more
            assert sent.mids == [7, 7]

            link._deliver([_publish(9, b"before")])
            (before,) = collect.wait(3)[2:]
            b.stop()  # the session outlives the connection; its copy comes again, as DUP
            b.start()
            deadline = time.monotonic() + 20
            while not link.connected and time.monotonic() < deadline:
                time.sleep(0.1)
            assert link.connected
            link.ack([before])  # delivered on the old connection: void
            assert sent.mids == [7, 7]
        finally:
            link.stop()


def test_after_a_reconnect_only_the_resent_copies_are_acknowledged(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The session survives a lost connection; the broker sends what is unacknowledged again
    (DUP) and that copy is acknowledged, the old one not: one PUBACK per id, none left over."""
    sent = Pubacks(monkeypatch)
    with broker(tmp_path) as b:
        link, collect = _link(b.port), Collect()
        link.start(collect)
        car = Vehicle(b.port)
        try:
            for i in range(5):
                car.publish("vehicles/V1/telemetry", f"m{i}".encode())
            old = collect.wait(5)
            sock = link._sock
            assert sock is not None
            sock.shutdown(socket.SHUT_RDWR)  # the connection is lost, the session is not
            resent = collect.wait(10)[5:]
            assert sorted(m.payload for m in resent) == [f"m{i}".encode() for i in range(5)]
            link.ack(old)  # delivered on the lost connection: void
            assert sent.mids == []
            link.ack(resent)
            assert sorted(sent.mids) == sorted(m.token[0] for m in resent)  # type: ignore[index]
            time.sleep(0.3)  # let the PUBACKs reach the broker before the DISCONNECT
            link.stop()

            again, collect2 = _link(b.port), Collect()
            again.start(collect2)
            car.publish("vehicles/V1/telemetry", b"marker")
            assert collect2.wait(1)[0].payload == b"marker", "the broker delivered a message again"
            again.stop()
        finally:
            car.close()
            link.stop()


def test_a_dup_resend_within_a_mqtt311_connection_is_the_same_entry(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sent = Pubacks(monkeypatch)
    with broker(tmp_path) as b:
        link, collect = _link(b.port, mqtt5=False), Collect()
        link.start(collect)
        try:
            link._deliver([_publish(5, b"once"), _publish(5, b"once", dup=True)])
            original, resent = collect.wait(2)
            assert original.token == resent.token
            link.ack([resent])  # either copy durable: the message is
            link.ack([original])
            assert sent.mids == [5]
        finally:
            link.stop()


def _push(port: int, count: int, window: int = 5000) -> None:
    """Publish `count` QoS 1 messages `m{i}` on one MQTT 3.1.1 socket, `window` at a time."""
    with socket.create_connection(("127.0.0.1", port), timeout=WAIT_S) as sock:
        sock.sendall(mqtt_wire.connect("pusher", "u", "p", keepalive=60, mqtt5=False, clean=True))
        buffer, publishes, others = bytearray(), [], []  # type: ignore[var-annotated]
        acked = -1  # the CONNACK
        sent = 0
        while acked < count:
            if sent < count and sent - acked < window:
                chunk = range(sent, min(count, sent + window))
                sock.sendall(
                    b"".join(
                        mqtt_wire.publish(
                            "vehicles/V1/telemetry", b"m%d" % i, i % 65535 + 1, retain=False,
                            dup=False, mqtt5=False,
                        )
                        for i in chunk
                    )
                )  # fmt: skip
                sent = chunk.stop
            data = sock.recv(65536)
            assert data, "the broker closed the publisher's connection"
            buffer += data
            others.clear()
            mqtt_wire.read_packets(buffer, False, publishes, others)
            acked += len(others)


def test_a_backlog_past_65535_ids_is_acknowledged_entry_by_entry(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A backlog makes Mosquitto 2.0.11 put far more than the Receive Maximum in flight and
    reuse packet ids; the link still holds at most its window and leaves the broker nothing:
    after everything is acknowledged, a new connection of the session gets only new messages."""
    window, count = 1000, 70_000
    monkeypatch.setattr(mqtt_link, "RECEIVE_MAXIMUM", window)
    with broker(tmp_path) as b:
        link = _link(b.port)
        inbox: queue.Queue[Inbound] = queue.Queue()
        held = [0, 0]  # held by the consumer now, most ever

        def sink(message: Inbound) -> None:
            held[0] += 1
            held[1] = max(held)
            inbox.put(message)

        link.start(sink)
        payloads: set[bytes] = set()
        consumer_error: list[BaseException] = []

        def consume() -> None:
            try:
                while len(payloads) < count:
                    batch = [inbox.get(timeout=30)]
                    while len(batch) < 500 and not inbox.empty():
                        batch.append(inbox.get_nowait())
                    payloads.update(m.payload for m in batch)
                    held[0] -= len(batch)
                    link.ack(batch)
            except BaseException as exc:  # reported by the test thread
                consumer_error.append(exc)

        consumer = threading.Thread(target=consume)
        consumer.start()
        _push(b.port, count)
        consumer.join(timeout=120)
        assert not consumer_error, consumer_error
        assert len(payloads) == count
        assert held[1] <= window
        time.sleep(0.3)  # let the last PUBACKs reach the broker before the DISCONNECT
        link.stop()

        again, collect = _link(b.port), Collect()
        again.start(collect)
        car = Vehicle(b.port)
        try:
            car.publish("vehicles/V1/telemetry", b"marker")
            first = collect.wait(1)[0]
            assert first.payload == b"marker", "the broker delivered a message again"
        finally:
            car.close()
            again.stop()


def test_messages_to_vehicles_respect_the_brokers_window_and_survive_a_restart(
    tmp_path: Path,
) -> None:
    with broker(tmp_path, "max_inflight_messages 2\n") as b:
        link = _link(b.port)
        link.start(Collect())
        car = Vehicle(b.port)
        car.client.subscribe("vehicles/V1/commands", qos=1)
        time.sleep(0.3)
        try:
            for i in range(50):  # far beyond the broker's window of 2
                link.send("V1", "commands", f"c{i}".encode())
            got = [car.inbox.get(timeout=WAIT_S)[1] for _ in range(50)]
            assert got == [f"c{i}".encode() for i in range(50)]

            b.stop()  # the link keeps what it could not send and sends it when the broker is back
            # Retained, so the car finds it whenever it subscribes again (Mosquitto 2.0 does
            # not restore a client's subscriptions after a restart).
            link.send("V1", "commands", b"while-down", retain=True)
            b.start()
            deadline = time.monotonic() + 20
            while not link.connected and time.monotonic() < deadline:
                time.sleep(0.1)
            assert link.connected
            while not car.client.is_connected() and time.monotonic() < deadline:
                time.sleep(0.1)
            car.client.subscribe("vehicles/V1/commands", qos=1)
            assert car.inbox.get(timeout=WAIT_S)[1] == b"while-down"
        finally:
            car.close()
            link.stop()


def test_after_a_broker_restart_the_session_resumes_and_delivers(tmp_path: Path) -> None:
    with broker(tmp_path) as b:
        link, collect = _link(b.port), Collect()
        link.start(collect)
        b.stop()
        b.start()
        deadline = time.monotonic() + 20
        while not link.connected and time.monotonic() < deadline:
            time.sleep(0.1)
        assert link.connected, "the link did not connect again"
        car = Vehicle(b.port)
        try:
            car.publish("vehicles/V9/events", b"after")
            assert collect.wait(1)[0].payload == b"after"
            link.ack(collect.messages)
        finally:
            car.close()
            link.stop()


def test_a_refused_login_says_why(tmp_path: Path) -> None:
    with broker(tmp_path, "") as b:
        b.stop()
        text = b.config.read_text().replace("allow_anonymous true", "allow_anonymous false")
        b.config.write_text(text)
        b.start()
        with pytest.raises(StoreUnavailable, match=r"not authorised|bad user name"):
            _link(b.port).start(Collect())


def test_no_broker_is_store_unavailable() -> None:
    with pytest.raises(StoreUnavailable, match="did not accept"):
        MqttLink("127.0.0.1", free_port(), username="u", password="p").start(Collect())


def test_sending_on_a_stopped_link_is_refused(tmp_path: Path) -> None:
    with broker(tmp_path) as b:
        link = _link(b.port)
        link.start(Collect())
        link.stop()
        with pytest.raises(StoreUnavailable, match="stopped"):
            link.send("V1", "commands", b"x")
