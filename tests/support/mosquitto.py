"""A private Mosquitto broker with the dynamic-security plugin, and a small MQTT probe client.

Tests never use the system broker on 1883 (it has no dynsec): `running_mosquitto` starts one
on a free loopback port from the config that `write_mosquitto_config` writes, and stops it at
exit. Without the `mosquitto` binary the test is skipped, except on CI (`CI=true`), where a
missing broker is a failure, so that the suite cannot silently lose its broker tests.

Use the fixture by importing it into the test module:
`from tests.support.mosquitto import mosquitto_broker  # noqa: F401`.
"""

from __future__ import annotations

import os
import queue
import secrets
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

from autocloud.adapters.mosquitto import write_mosquitto_config
from autocloud.domain.errors import ConfigurationError

INSTALL_HINT = "install mosquitto (apt-get install mosquitto mosquitto-clients)"
START_TIMEOUT_S = 10.0
WAIT_S = 5.0


@dataclass(frozen=True, slots=True)
class MosquittoInstance:
    """Where a started test broker listens and how to administer it."""

    host: str
    port: int
    admin_user: str
    admin_password: str
    config_path: Path


def _unavailable(reason: str) -> NoReturn:
    """Skip the test on a developer machine; fail it on CI, where the broker must be there."""
    message = f"{reason}: {INSTALL_HINT}"
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)


def mosquitto_binary() -> str:
    """Path of the broker binary (often in /usr/sbin, off a user's PATH); skip if missing."""
    found = shutil.which("mosquitto")
    for candidate in (found, "/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto"):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    _unavailable("mosquitto binary not found")


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that was free on `host` a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def _log_tail(directory: Path) -> str:
    texts = [p.read_text(errors="replace") for p in sorted(directory.glob("*.log")) if p.is_file()]
    return "\n".join(texts)[-2000:]


def _wait_until_listening(
    process: subprocess.Popen[bytes], host: str, port: int, directory: Path
) -> None:
    """Poll the port until it accepts a connection; fail early if the broker died."""
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"mosquitto exited with {process.returncode}:\n{_log_tail(directory)}")
        with suppress(OSError), socket.create_connection((host, port), timeout=0.2):
            return
        time.sleep(0.05)
    pytest.fail(f"mosquitto did not listen on {host}:{port} within {START_TIMEOUT_S:g} s")


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=5)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=5)


@contextmanager
def running_mosquitto(directory: Path) -> Iterator[MosquittoInstance]:
    """Start a private Mosquitto with dynsec on a free loopback port; stop it at exit."""
    binary = mosquitto_binary()
    host, port = "127.0.0.1", free_port()
    admin_user, admin_password = "dynsec-admin", secrets.token_urlsafe(16)
    try:
        config = write_mosquitto_config(
            directory, port=port, admin_user=admin_user, admin_password=admin_password, host=host
        )
    except ConfigurationError as exc:
        _unavailable(str(exc))
    with (directory / "stderr.log").open("wb") as stderr:
        process = subprocess.Popen(
            [binary, "-c", str(config)], stdout=subprocess.DEVNULL, stderr=stderr
        )
    try:
        _wait_until_listening(process, host, port, directory)
        yield MosquittoInstance(host, port, admin_user, admin_password, config)
    finally:
        _stop(process)


@pytest.fixture
def mosquitto_broker(tmp_path: Path) -> Iterator[MosquittoInstance]:
    """A fresh private broker for one test."""
    with running_mosquitto(tmp_path / "mosquitto") as instance:
        yield instance


class MqttProbe:
    """A blocking MQTT test client: connect, subscribe, publish, and look at what arrives.

    Every wait is bounded (`WAIT_S`), so a broker that misbehaves fails a test, never hangs it.
    """

    def __init__(
        self,
        broker: MosquittoInstance,
        username: str | None,
        password: str | None,
        *,
        protocol: MQTTProtocolVersion = MQTTProtocolVersion.MQTTv5,
        client_id: str | None = None,
    ) -> None:
        self._broker = broker
        if client_id is None:  # a vehicle's login is bound to client id = VIN
            vehicle = username is not None and len(username) == 17
            client_id = username if vehicle else f"probe-{secrets.token_hex(6)}"
        self._client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=client_id,
            protocol=protocol,
            reconnect_on_failure=False,  # a test sees every refusal and every kick as it is
        )
        if username is not None:
            self._client.username_pw_set(username, password)
        self.messages: queue.Queue[tuple[str, bytes]] = queue.Queue()
        self._connack: queue.Queue[int] = queue.Queue()
        self._subacks: dict[int, list[int]] = {}
        self._changed = threading.Condition()
        self.disconnected = threading.Event()
        self._client.on_connect = self._on_connect
        self._client.on_subscribe = self._on_subscribe
        self._client.on_message = self._on_message
        self._client.on_disconnect = self._on_disconnect

    def connect(self) -> int:
        """Connect and return the CONNACK reason code (0 = accepted)."""
        self._client.connect(self._broker.host, self._broker.port, keepalive=30)
        self._client.loop_start()
        return self._connack.get(timeout=WAIT_S)

    def subscribe(self, topic: str, qos: int = 1) -> list[int]:
        """Subscribe and return the SUBACK reason codes (>= 0x80 = refused)."""
        _rc, mid = self._client.subscribe(topic, qos=qos)
        assert mid is not None, f"subscribe to {topic} not sent"
        with self._changed:
            if not self._changed.wait_for(lambda: mid in self._subacks, timeout=WAIT_S):
                raise TimeoutError(f"no SUBACK for {topic}")
            return self._subacks.pop(mid)

    def publish(self, topic: str, payload: bytes, qos: int = 1) -> None:
        """Publish and, for QoS 1, wait until the broker acknowledged it."""
        self._client.publish(topic, payload, qos=qos).wait_for_publish(timeout=WAIT_S)

    def next_message(self, timeout: float = WAIT_S) -> tuple[str, bytes] | None:
        """The next received (topic, payload), or None if nothing arrives within `timeout`."""
        try:
            return self.messages.get(timeout=timeout)
        except queue.Empty:
            return None

    def close(self) -> None:
        """Disconnect (stops paho's automatic reconnects too) and end the network thread."""
        self._client.disconnect()
        self._client.loop_stop()

    def _on_connect(self, _c: mqtt.Client, _u: object, _f: object, reason: Any, _p: object) -> None:
        self._connack.put(int(reason.value))

    def _on_subscribe(
        self, _c: mqtt.Client, _u: object, mid: int, reasons: Any, _p: object
    ) -> None:
        with self._changed:
            self._subacks[mid] = [int(reason.value) for reason in reasons]
            self._changed.notify_all()

    def _on_message(self, _c: mqtt.Client, _u: object, message: Any) -> None:
        self.messages.put((message.topic, bytes(message.payload)))

    def _on_disconnect(self, _c: mqtt.Client, _u: object, _f: object, _r: Any, _p: object) -> None:
        self.disconnected.set()


@contextmanager
def probe(
    broker: MosquittoInstance,
    username: str | None,
    password: str | None,
    *,
    protocol: MQTTProtocolVersion = MQTTProtocolVersion.MQTTv5,
    client_id: str | None = None,
) -> Iterator[MqttProbe]:
    """An `MqttProbe` that is closed at exit (not yet connected: call `connect()`)."""
    client = MqttProbe(broker, username, password, protocol=protocol, client_id=client_id)
    try:
        yield client
    finally:
        client.close()


def connack(
    broker: MosquittoInstance,
    username: str | None,
    password: str | None,
    *,
    protocol: MQTTProtocolVersion = MQTTProtocolVersion.MQTTv5,
    client_id: str | None = None,
) -> int:
    """Try to connect once and return the CONNACK reason code (0 = accepted)."""
    with probe(broker, username, password, protocol=protocol, client_id=client_id) as client:
        return client.connect()
