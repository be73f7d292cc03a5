"""A test vehicle: a paho client that speaks protocol v1 and waits for its PUBACKs."""

import threading
import time
from typing import Any

import msgspec
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

WAIT_S = 10.0


def now_ms() -> int:
    return time.time_ns() // 1_000_000


class TestVehicle:
    __test__ = False

    def __init__(self, host: str, port: int, vin: str, secret: str, *, mqtt5: bool = False) -> None:
        self.vin = vin
        self.seq = 0
        self.sid = "test-boot-1"
        protocol = mqtt.MQTTv5 if mqtt5 else mqtt.MQTTv311
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=vin, protocol=protocol)
        self.client.username_pw_set(vin, secret)
        self.client.will_set(f"vehicles/{vin}/state", b'{"online":false}', qos=1, retain=True)
        self._connected = threading.Event()
        self._answered = threading.Event()
        self.refused: str | None = None
        self.client.on_connect = self._on_connect
        self.client.connect(host, port, keepalive=5)
        self.client.loop_start()
        self._answered.wait(WAIT_S)
        if not self._connected.is_set():
            self.client.loop_stop()
            raise ConnectionError(f"{vin} could not connect: {self.refused}")

    def _on_connect(self, _c: Any, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        if reason.is_failure:
            self.refused = str(reason)
        else:
            self._connected.set()
        self._answered.set()

    def publish(
        self, subtopic: str, body: Any, *, vin: str | None = None, retain: bool = False
    ) -> None:
        payload = body if isinstance(body, bytes) else msgspec.json.encode(body)
        info = self.client.publish(
            f"vehicles/{vin or self.vin}/{subtopic}", payload, qos=1, retain=retain
        )
        info.wait_for_publish(WAIT_S)

    def telemetry(self, signals: dict[str, Any], ts: int | None = None) -> int:
        self.seq += 1
        self.publish(
            "telemetry",
            {"v": 1, "sid": self.sid, "seq": self.seq, "ts": ts or now_ms(), "signals": signals},
        )
        return self.seq

    def online(self) -> None:
        self.publish("state", {"online": True, "ts": now_ms(), "sid": self.sid}, retain=True)

    def vanish(self) -> None:
        """Drop the TCP connection without DISCONNECT, so the broker sends the last will."""
        self.client.loop_stop()
        sock = self.client.socket()
        if sock is not None:
            sock.close()

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def eventually(check: Any, timeout: float = 15.0, interval: float = 0.1) -> Any:
    """Poll `check()` until it returns something truthy; fail with its last value."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout}s (last: {last!r})")
