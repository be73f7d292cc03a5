"""What `RetiringSession` makes of the broker's answers (no broker: its paho callbacks are fed)."""

import pytest
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.reasoncodes import ReasonCode

from autocloud.adapters.mqtt_retire import RetiringSession
from autocloud.domain.errors import StoreUnavailable


def session() -> RetiringSession:
    return RetiringSession(
        "127.0.0.1",
        1,
        username="autocloud-platform",
        password="x",
        client_id="autocloud-ingest-1",
        filters=["$share/autocloud/vehicles/+/telemetry", "vehicles/+/telemetry"],
    )


def unsuback(*codes: int) -> list[ReasonCode]:
    return [ReasonCode(PacketTypes.UNSUBACK, identifier=code) for code in codes]


def test_a_refused_unsubscribe_fails_the_drain_and_keeps_the_session() -> None:
    s = session()
    s._on_unsubscribe(s._client, None, 1, unsuback(0x00, 0x87), None)  # 0x87: not authorised
    with pytest.raises(StoreUnavailable, match="unsubscribing the platform's filters refused"):
        s.drain(stall_s=1)
    with pytest.raises(StoreUnavailable, match="not drained"):
        s.end()


def test_no_subscription_existed_is_not_a_refusal() -> None:
    s = session()
    s._acks_due = 2  # as after CONNACK: the UNSUBACK and the marker's SUBACK to come
    s._on_unsubscribe(s._client, None, 1, unsuback(0x00, 0x11), None)
    assert s._lost is None
    assert s._acks_due == 1
