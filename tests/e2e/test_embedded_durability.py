"""Embedded tier: SIGKILL the platform (broker included) mid-stream and lose nothing acknowledged.

The embedded broker holds each vehicle's PUBACK until ingest has committed the message
(adapters/amqtt_link.py). When the process dies, unacknowledged messages stay with the
vehicle, which resends them after reconnecting to the restarted platform.
"""

import signal
import subprocess
import threading
import time
from pathlib import Path

import httpx
import msgspec
import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from tests.conftest import free_port
from tests.support.platform_process import start_platform as run_platform
from tests.support.platform_process import stored
from tests.support.vehicle import eventually

pytestmark = pytest.mark.slow
VIN = "WVWZZZ1JZXW000001"
MESSAGES = 3000


def start_platform(data_dir: Path, api_port: int, mqtt_port: int) -> subprocess.Popen[bytes]:
    return run_platform(data_dir, api_port, "--mqtt-port", str(mqtt_port))


def test_embedded_platform_loses_no_acknowledged_message(tmp_path: Path) -> None:
    api_port, mqtt_port = free_port(), free_port()
    platform = start_platform(tmp_path, api_port, mqtt_port)
    token = (tmp_path / "admin-token").read_text().strip()
    api = httpx.Client(
        base_url=f"http://127.0.0.1:{api_port}", headers={"Authorization": f"Bearer {token}"}
    )
    assert api.post("/v1/brands", json={"id": "alpha", "name": "Alpha"}).status_code == 201
    created = api.post("/v1/vehicles", json={"vin": VIN, "brand": "alpha"})
    secret = created.json()["credential"]["password"]

    acked: set[int] = set()
    lock = threading.Lock()
    car = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=VIN, clean_session=False)
    car.username_pw_set(VIN, secret)
    car.max_inflight_messages_set(50)
    car.reconnect_delay_set(1, 2)

    def on_publish(_c: object, _u: object, mid: int, _r: object, _p: object) -> None:
        with lock:
            acked.add(mid)

    car.on_publish = on_publish
    car.connect("127.0.0.1", mqtt_port, keepalive=5)
    car.loop_start()
    base_ts = int(time.time() * 1000) - MESSAGES - 1000
    mids = []
    for i in range(MESSAGES):
        body = {
            "v": 1,
            "sid": "boot-1",
            "seq": i + 1,
            "ts": base_ts + i,
            "signals": {"Vehicle.Speed": float(i % 250)},
        }
        mids.append(car.publish(f"vehicles/{VIN}/telemetry", msgspec.json.encode(body), qos=1).mid)

    db = tmp_path / "autocloud.db"
    eventually(lambda: stored(db) > MESSAGES // 10, timeout=60)
    platform.send_signal(signal.SIGKILL)  # the broker dies with it
    platform.wait(timeout=10)
    with lock:
        acked_before_kill = set(acked)
    killed_at = stored(db)
    assert killed_at < MESSAGES, "the kill came too late to test anything"
    # Every PUBACK the vehicle got so far was for a message already committed.
    assert len(acked_before_kill) <= killed_at

    platform = start_platform(tmp_path, api_port, mqtt_port)
    try:
        eventually(lambda: len(acked) == MESSAGES, timeout=120)
        eventually(lambda: stored(db) == MESSAGES, timeout=30)
        summary = api.get("/v1/dead-letters/summary").json()
        assert set(summary) <= {"duplicate"}, summary
    finally:
        car.loop_stop()
        platform.send_signal(signal.SIGTERM)
        platform.wait(timeout=30)
