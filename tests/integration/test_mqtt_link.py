"""The platform's MQTT session (`MqttLink`) against a real Mosquitto: acknowledgement only on
`ack`, redelivery of what was not acknowledged, messages to vehicles, the broker's receive
window, reconnection after the broker restarts, and refusals that say why."""

from __future__ import annotations

import getpass
import queue
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
        self.client.reconnect_delay_set(0.2, 1)
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


def test_a_message_delivered_twice_is_acknowledged_after_both_copies(tmp_path: Path) -> None:
    with broker(tmp_path) as b:
        link, collect = _link(b.port), Collect()
        link.start(collect)
        car = Vehicle(b.port)
        try:
            car.publish("vehicles/V1/telemetry", b"once")
            (message,) = collect.wait(1)
            # Another copy of the same delivery (as after a reconnect of a kept session).
            link._deliver([_same(message)])
            copy = collect.wait(2)[1]
            link.ack([message])
            time.sleep(0.3)
            link.stop()
            again, collect2 = _link(b.port), Collect()
            again.start(collect2)
            assert collect2.wait(1)[0].payload == b"once"  # one copy was not acknowledged yet
            again.ack(collect2.messages)
            time.sleep(0.3)
            again.stop()
            assert copy.token == message.token
        finally:
            car.close()


def _same(message: Inbound) -> object:
    from autocloud.adapters.mqtt_wire import Publish

    assert isinstance(message.token, tuple)
    return Publish(message.topic, message.payload, 1, False, True, message.token[1], None)


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
