"""Retiring a consumer: what Mosquitto queued for it is ingested, then its share goes away.

Two consumers (`consumer_id` 0 and 1) share the vehicle topics (MQTT 5 shared subscription).
Consumer 1 stops; Mosquitto keeps queueing its share in its persistent session. Retiring it
must ingest every queued message through the normal pipeline and delete the session, so that
afterwards consumer 0 alone receives everything. Real Mosquitto (dynsec) and PostgreSQL.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from typer.testing import CliRunner

from autocloud.adapters.mqtt_retire import Drained, RetiringSession
from autocloud.bootstrap import SYSTEM, Platform, build, consumer_client_id, retire_consumer
from autocloud.domain.errors import ConfigurationError
from autocloud.entrypoints.cli.main import app
from autocloud.settings import Settings, load_settings
from tests.support.mosquitto import WAIT_S, MosquittoInstance, probe
from tests.support.vehicle import TestVehicle, eventually, now_ms

pytestmark = [pytest.mark.mosquitto, pytest.mark.timeout(180)]

# A dozen vehicles, 200 messages each: 2,400 in all, of which the retired consumer holds about
# half (round robin over two members). That is more than the broker's in-flight window
# (max_inflight_messages 1000 in the generated config), so part of its share waits in its queue,
# not only in flight; and per vehicle it stays well within the replay window (1,024 seqs).
VINS = [f"WVWZZZ1JZXW{i:06d}" for i in range(1, 13)]
PER_VEHICLE = 200
QUEUED_AT_LEAST = 1001
AFTER = 20  # per vehicle, once the consumer is retired
BURST = 3000  # 1 kB messages the broker sends a retiring session as it ends


class Consumers:
    """Builds consumer processes of one platform (same database, data dir and broker)."""

    def __init__(self, data_dir: Path, broker: MosquittoInstance, db_url: str) -> None:
        self.data_dir, self.broker, self.db_url = data_dir, broker, db_url

    def settings(self, consumer_id: str) -> Settings:
        return load_settings(
            data_dir=self.data_dir,
            broker=f"mqtt://{self.broker.host}:{self.broker.port}",
            broker_admin_user=self.broker.admin_user,
            broker_admin_password=self.broker.admin_password,
            db=self.db_url,
            consumer_id=consumer_id,
            ingest_wait_ms=5,
        )

    def started(self, consumer_id: str) -> Platform:
        platform = build(self.settings(consumer_id))
        platform.start()
        return platform


@pytest.fixture
def consumers(tmp_path: Path, mosquitto_broker: MosquittoInstance, pg_url: str) -> Consumers:
    return Consumers(tmp_path / "data", mosquitto_broker, pg_url)


@pytest.fixture
def first(consumers: Consumers) -> Iterator[Platform]:
    """Consumer 0, running, with one registered vehicle."""
    platform = consumers.started("0")
    platform.registry.add_brand(SYSTEM, "alpha", "Alpha")
    yield platform
    platform.stop()


def stored(platform: Platform, vins: list[str]) -> int:
    """History rows of `vins` (one per telemetry message: each has its own timestamp)."""
    count = 0
    for vin in vins:
        cursor = None
        while True:
            rows, cursor = platform.telemetry.history(
                SYSTEM, vin, ["Vehicle.Speed"], 0, now_ms() + 60_000, cursor=cursor, limit=1000
            )
            count += len(rows)
            if cursor is None:
                break
    return count


def stale(platform: Platform) -> int:
    """Dead letters refused as more than the replay window behind (raw payload kept)."""
    return platform.telemetry.dead_letter_counts(SYSTEM).get("stale_seq", 0)


def send(cars: list[TestVehicle], count: int, start_ts: int) -> None:
    """`count` telemetry messages per car, interleaved, each with its own timestamp."""
    for i in range(count):
        for car in cars:
            car.telemetry({"Vehicle.Speed": float(i % 250)}, ts=start_ts + i)


@contextmanager
def fleet(platform: Platform, vins: list[str]) -> Iterator[list[TestVehicle]]:
    """Registered, connected test vehicles (MQTT 5), closed at exit."""
    host, port = platform.settings.mqtt_host_port
    secrets = [platform.registry.add_vehicle(SYSTEM, vin, "alpha").secret for vin in vins]
    cars: list[TestVehicle] = []
    try:
        for vin, secret in zip(vins, secrets, strict=True):
            cars.append(TestVehicle(host, port, vin, secret, mqtt5=True))
        yield cars
    finally:
        for car in cars:
            car.close()


def retire(consumers: Consumers, consumer_id: str) -> Drained:
    """Run the retirement as `autocloud consumers retire` does: a platform built, not started."""
    platform = build(consumers.settings(consumer_id))
    try:
        return retire_consumer(platform, stall_s=30)
    finally:
        platform.stop()


def session_present(broker: MosquittoInstance, password: str, client_id: str) -> bool:
    """Whether the broker holds a session for `client_id` (the check itself leaves none)."""
    answer: list[bool] = []
    done = threading.Event()

    def on_connect(_c: mqtt.Client, _u: object, flags: object, reason: object, _p: object) -> None:
        assert not getattr(reason, "is_failure", True), reason
        answer.append(bool(getattr(flags, "session_present", True)))
        done.set()

    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
    client.username_pw_set("autocloud-platform", password)
    client.on_connect = on_connect
    # Clean start off shows an existing session; session expiry 0 (the MQTT 5 default) makes
    # the broker drop the session when this check disconnects.
    client.connect(broker.host, broker.port, clean_start=False)
    client.loop_start()
    try:
        assert done.wait(WAIT_S), "no CONNACK"
    finally:
        client.disconnect()
        client.loop_stop()
    return answer[0]


def goodbyes(broker: MosquittoInstance) -> int:
    """How many connections of consumer 1 ended with a DISCONNECT the broker read (Mosquitto
    logs a connection closed without one as "closed its connection")."""
    said = (broker.config_path.parent / "mosquitto.log").read_text(errors="replace")
    return said.count("Client autocloud-ingest-1 disconnected.")


def test_retired_consumer_queue_is_ingested_and_its_share_ends(
    consumers: Consumers, first: Platform, mosquitto_broker: MosquittoInstance
) -> None:
    consumers.started("1").stop()  # consumer 1 is gone; its session stays in the shared group
    start = now_ms() - 600_000
    with fleet(first, VINS) as cars:
        send(cars, PER_VEHICLE, start)
        drained = retire(consumers, "1")
        assert drained.session_present
        assert drained.client_id == consumer_client_id("1")
        assert drained.messages >= QUEUED_AT_LEAST
        total = len(VINS) * PER_VEHICLE
        eventually(lambda: stored(first, VINS) == total, timeout=60)
        # From now on consumer 0 alone gets the messages: none waits for consumer 1.
        send(cars, AFTER, start + PER_VEHICLE)
        eventually(lambda: stored(first, VINS) == total + len(VINS) * AFTER, timeout=60)
    assert stale(first) == 0
    assert not session_present(mosquitto_broker, first.platform_password, consumer_client_id("1"))


def test_the_session_ends_without_paho_writing_a_disconnect(
    consumers: Consumers,
    first: Platform,
    mosquitto_broker: MosquittoInstance,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """paho's network thread can stop with a queued DISCONNECT never written.

    A packet capture of a failing run showed this: the retiring client's last bytes were a
    PUBACK, then a TCP reset, and no DISCONNECT. The broker then kept the session ("closed its
    connection"). Here paho's `disconnect` writes nothing at all; the session must end
    regardless.
    """
    consumers.started("1").stop()

    def unwritten(client: mqtt.Client, *_args: object, **_kwargs: object) -> mqtt.MQTTErrorCode:
        return mqtt.MQTT_ERR_SUCCESS

    monkeypatch.setattr(mqtt.Client, "disconnect", unwritten)
    drained = retire(consumers, "1")
    monkeypatch.undo()
    assert drained.session_present
    eventually(lambda: goodbyes(mosquitto_broker) == 2, timeout=WAIT_S)  # consumer 1's, ours
    assert not session_present(mosquitto_broker, first.platform_password, consumer_client_id("1"))


def test_the_session_ends_while_the_broker_is_still_sending(
    consumers: Consumers,
    first: Platform,
    mosquitto_broker: MosquittoInstance,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Ending reads what the broker still sends until the broker closes, so the DISCONNECT
    takes effect while a burst is on its way: here the broker is made to send the retiring
    session 3 MB just as it ends, with nothing reading them."""
    consumers.started("1").stop()
    end = RetiringSession.end

    def end_under_a_burst(session: RetiringSession) -> None:
        session._client.loop_stop()  # from now on nothing reads what the broker sends
        with probe(mosquitto_broker, "autocloud-platform", first.platform_password) as sender:
            assert sender.connect() == 0
            for _ in range(BURST):  # more than the socket buffers hold
                sender.publish(session._marker, b"x" * 1000, qos=0)
        time.sleep(0.5)  # the broker has filled the retiring session's socket and still sends
        end(session)

    monkeypatch.setattr(RetiringSession, "end", end_under_a_burst)
    drained = retire(consumers, "1")
    assert drained.session_present
    eventually(lambda: goodbyes(mosquitto_broker) == 2, timeout=WAIT_S)  # consumer 1's, ours
    assert not session_present(mosquitto_broker, first.platform_password, consumer_client_id("1"))


def test_messages_beyond_the_replay_window_are_kept_as_dead_letters(
    consumers: Consumers, first: Platform
) -> None:
    """One vehicle, 2,400 messages: consumer 0 runs 1,200 seqs ahead of the retired queue.

    The pipeline cannot tell a message more than `WINDOW` seqs behind from a replay, so those of
    the retired queue are refused as `stale_seq`: dead letters with their raw payload, not
    history rows. None is lost either way.
    """
    consumers.started("1").stop()
    sent = 2 * 1200
    with fleet(first, VINS[:1]) as cars:
        send(cars, sent, now_ms() - 600_000)
        drained = retire(consumers, "1")
    assert drained.messages >= QUEUED_AT_LEAST
    eventually(lambda: stored(first, VINS[:1]) + stale(first) == sent, timeout=60)
    assert stale(first) > 0


def test_retiring_an_unknown_consumer_changes_nothing(
    consumers: Consumers, first: Platform, mosquitto_broker: MosquittoInstance
) -> None:
    drained = retire(consumers, "7")
    assert not drained.session_present
    assert drained.messages == 0
    assert not session_present(mosquitto_broker, first.platform_password, consumer_client_id("7"))


def test_retire_refuses_the_embedded_broker(tmp_path: Path) -> None:
    platform = build(load_settings(data_dir=tmp_path, db=f"sqlite:///{tmp_path}/a.db"))
    try:
        with pytest.raises(ConfigurationError, match="Mosquitto"):
            retire_consumer(platform)
    finally:
        platform.stop()


def test_cli_retires_a_consumer(
    consumers: Consumers,
    first: Platform,
    mosquitto_broker: MosquittoInstance,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    consumers.started("2").stop()
    with fleet(first, VINS[:2]) as cars:
        send(cars, 10, now_ms() - 60_000)
    monkeypatch.setenv("AUTOCLOUD_BROKER_ADMIN_USER", mosquitto_broker.admin_user)
    monkeypatch.setenv("AUTOCLOUD_BROKER_ADMIN_PASSWORD", mosquitto_broker.admin_password)
    host, port = first.settings.mqtt_host_port
    args = ["consumers", "retire", "2", "--broker", f"mqtt://{host}:{port}"]
    args += ["--db", consumers.db_url, "--data-dir", str(consumers.data_dir)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    said = " ".join(result.output.split())  # rich wraps lines at the terminal width
    assert re.search(r"retired consumer 2: [1-9][0-9]* queued messages ingested", said), said
    assert "session autocloud-ingest-2 ended" in said
    eventually(lambda: stored(first, VINS[:2]) == 20, timeout=60)
    assert not session_present(mosquitto_broker, first.platform_password, consumer_client_id("2"))
