"""SIGKILL the platform mid-stream, restart it, and find every acknowledged message stored.

The platform acknowledges a QoS 1 message to Mosquitto only after its batch is committed;
Mosquitto keeps unacknowledged and queued messages in the platform's persistent session
and redelivers them after the restart. Redelivered messages that had been committed just
before the kill are recognised by (vin, sid, seq) and dead-lettered as duplicates.
"""

import signal
import subprocess
import threading
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import free_port
from tests.support.mosquitto import MosquittoInstance
from tests.support.platform_process import start_platform as run_platform
from tests.support.platform_process import stored
from tests.support.vehicle import TestVehicle, eventually

pytestmark = [pytest.mark.mosquitto, pytest.mark.slow]
VIN = "WVWZZZ1JZXW000001"
MESSAGES = 4000


def start_platform(
    data_dir: Path, broker: MosquittoInstance, api_port: int
) -> subprocess.Popen[bytes]:
    env = {
        "AUTOCLOUD_BROKER_ADMIN_USER": broker.admin_user,
        "AUTOCLOUD_BROKER_ADMIN_PASSWORD": broker.admin_password,
        "AUTOCLOUD_INGEST_BATCH": "200",
    }
    return run_platform(
        data_dir, api_port, "--broker", f"mqtt://{broker.host}:{broker.port}", env=env
    )


def test_no_acknowledged_message_is_lost(
    tmp_path: Path, mosquitto_broker: MosquittoInstance
) -> None:
    api_port = free_port()
    platform = start_platform(tmp_path, mosquitto_broker, api_port)
    token = (tmp_path / "admin-token").read_text().strip()
    api = httpx.Client(
        base_url=f"http://127.0.0.1:{api_port}", headers={"Authorization": f"Bearer {token}"}
    )
    assert api.post("/v1/brands", json={"id": "alpha", "name": "Alpha"}).status_code == 201
    secret = api.post("/v1/vehicles", json={"vin": VIN, "brand": "alpha"}).json()["credential"][
        "password"
    ]
    car = TestVehicle(mosquitto_broker.host, mosquitto_broker.port, VIN, secret)
    base_ts = int(time.time() * 1000) - MESSAGES - 1000
    acked: list[int] = []

    def publish_all() -> None:
        for i in range(MESSAGES):
            car.telemetry({"Vehicle.Speed": float(i % 250)}, ts=base_ts + i)
            acked.append(i)  # telemetry() returns after the broker's PUBACK

    publisher = threading.Thread(target=publish_all)
    publisher.start()
    db = tmp_path / "autocloud.db"
    eventually(lambda: stored(db) > MESSAGES // 5, timeout=60)
    platform.send_signal(signal.SIGKILL)  # mid-stream: no clean shutdown
    platform.wait(timeout=10)
    killed_at = stored(db)
    assert killed_at < MESSAGES, "the kill came too late to test anything"
    publisher.join(timeout=120)
    assert len(acked) == MESSAGES

    platform = start_platform(tmp_path, mosquitto_broker, api_port)
    try:
        eventually(lambda: stored(db) >= MESSAGES, timeout=90)
        time.sleep(1)  # let any redelivery finish
        assert stored(db) == MESSAGES
        summary = api.get("/v1/dead-letters/summary").json()
        assert set(summary) <= {"duplicate"}, summary
    finally:
        platform.send_signal(signal.SIGTERM)
        platform.wait(timeout=30)
        car.close()
