"""Vehicle protocol v1 decoding: every malformed shape maps to a reason."""

import msgspec
import pytest

from autocloud.domain.protocol import (
    MSGPACK_CONTENT_TYPE,
    Event,
    ProtocolError,
    Reason,
    State,
    Telemetry,
    Topic,
    decode,
    samples_of,
    split_topic,
)

VIN = "WVWZZZ1JZXW000001"


def test_split_topic() -> None:
    assert split_topic(f"vehicles/{VIN}/telemetry") == (VIN, Topic.TELEMETRY)


@pytest.mark.parametrize(
    "topic",
    [
        "vehicles",
        f"cars/{VIN}/telemetry",
        "vehicles//telemetry",
        f"vehicles/{VIN}/nope",
        f"vehicles/{VIN}/telemetry/x",
    ],
)
def test_bad_topics(topic: str) -> None:
    with pytest.raises(ProtocolError) as info:
        split_topic(topic)
    assert info.value.reason is Reason.BAD_TOPIC


def test_inline_and_batched_telemetry() -> None:
    one = decode(
        Topic.TELEMETRY,
        b'{"v":1,"sid":"a","seq":1,"ts":1700000000000,"signals":{"Vehicle.Speed":3}}',
    )
    assert isinstance(one, Telemetry)
    assert samples_of(one)[0].signals == {"Vehicle.Speed": 3}
    many = decode(
        Topic.TELEMETRY,
        b'{"v":1,"sid":"a","seq":2,"samples":[{"ts":1,"signals":{}},{"ts":2,"signals":{"Vehicle.Speed":1}}]}',
    )
    assert isinstance(many, Telemetry)
    assert [s.ts for s in samples_of(many)] == [1, 2]


def test_msgpack_when_content_type_says_so() -> None:
    body = msgspec.msgpack.encode(
        {"v": 1, "sid": "a", "seq": 1, "ts": 5, "signals": {"Vehicle.Speed": 1.5}}
    )
    message = decode(Topic.TELEMETRY, body, MSGPACK_CONTENT_TYPE)
    assert isinstance(message, Telemetry)


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"{not json", Reason.MALFORMED),
        (b"", Reason.MALFORMED),
        (b'{"v":1,"sid":"a","seq":"x","ts":1,"signals":{}}', Reason.SCHEMA),
        (b'{"v":1,"sid":"a","seq":1,"ts":1,"signals":{},"extra":1}', Reason.SCHEMA),
        (b'{"v":1,"sid":"a","seq":1}', Reason.SCHEMA),
        (b'{"v":1,"sid":"a","seq":1,"ts":1,"signals":{},"samples":[]}', Reason.SCHEMA),
        (b'{"v":1,"sid":"a","seq":1,"samples":[]}', Reason.SCHEMA),
        (b'{"v":1,"sid":"","seq":1,"ts":1,"signals":{}}', Reason.SCHEMA),
        (b'{"v":1,"sid":"a","seq":-1,"ts":1,"signals":{}}', Reason.SCHEMA),
        (b'{"v":2,"sid":"a","seq":1,"ts":1,"signals":{}}', Reason.UNSUPPORTED_VERSION),
        (b"[1,2,3]", Reason.SCHEMA),
    ],
)
def test_bad_telemetry(payload: bytes, reason: Reason) -> None:
    with pytest.raises(ProtocolError) as info:
        decode(Topic.TELEMETRY, payload)
    assert info.value.reason is reason
    assert info.value.detail


def test_events_need_a_known_family() -> None:
    ok = decode(
        Topic.EVENTS,
        b'{"v":1,"sid":"a","seq":1,"ts":1,"type":"dtc.raised","data":{"code":"P0301"}}',
    )
    assert isinstance(ok, Event)
    with pytest.raises(ProtocolError) as info:
        decode(Topic.EVENTS, b'{"v":1,"sid":"a","seq":1,"ts":1,"type":"party.started"}')
    assert info.value.reason is Reason.UNKNOWN_EVENT


def test_state_and_last_will() -> None:
    assert decode(Topic.STATE, b'{"online":false}') == State(online=False)
    online = decode(Topic.STATE, b'{"online":true,"ts":5,"sid":"b"}')
    assert isinstance(online, State) and online.sid == "b"
