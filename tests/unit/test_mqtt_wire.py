"""The platform's MQTT packet codec, byte by byte against the MQTT 3.1.1 and 5 specifications."""

import pytest

from autocloud.adapters import mqtt_wire as wire


def _publish_bytes(topic: bytes, mid: int | None, payload: bytes, props: bytes | None) -> bytes:
    body = len(topic).to_bytes(2, "big") + topic
    if mid is not None:
        body += mid.to_bytes(2, "big")
    if props is not None:
        body += wire.varint(len(props)) + props
    first = 0x32 if mid is not None else 0x30
    return bytes((first,)) + wire.varint(len(body + payload)) + body + payload


def test_varint_matches_the_specification_examples() -> None:
    # MQTT 5 §1.5.5: boundaries of the 1-4 byte encodings.
    assert wire.varint(0) == b"\x00"
    assert wire.varint(127) == b"\x7f"
    assert wire.varint(128) == b"\x80\x01"
    assert wire.varint(16_383) == b"\xff\x7f"
    assert wire.varint(16_384) == b"\x80\x80\x01"
    assert wire.varint(268_435_455) == b"\xff\xff\xff\x7f"
    with pytest.raises(ValueError, match="cannot hold"):
        wire.varint(268_435_456)


def test_connect_mqtt5_asks_for_a_lasting_session_and_a_receive_window() -> None:
    packet = wire.connect("c", "u", "p", keepalive=30, mqtt5=True, receive_maximum=500)
    props = b"\x11\xff\xff\xff\xff\x21\x01\xf4"
    body = b"\x00\x04MQTT\x05\xc0\x00\x1e" + bytes((len(props),)) + props
    body += b"\x00\x01c\x00\x01u\x00\x01p"
    assert packet == b"\x10" + bytes((len(body),)) + body


def test_connect_mqtt311_keeps_the_session_and_has_no_properties() -> None:
    packet = wire.connect("id", "user", "pw", keepalive=60, mqtt5=False)
    body = b"\x00\x04MQTT\x04\xc0\x00\x3c\x00\x02id\x00\x04user\x00\x02pw"
    assert packet == b"\x10" + bytes((len(body),)) + body


def test_subscribe_and_publish_and_pubacks() -> None:
    assert wire.subscribe(1, [("a/+", 1)], mqtt5=True) == b"\x82\x09\x00\x01\x00\x00\x03a/+\x01"
    assert wire.subscribe(7, [("a/#", 1)], mqtt5=False) == b"\x82\x08\x00\x07\x00\x03a/#\x01"
    assert (
        wire.publish("t", b"xy", 5, retain=True, dup=True, mqtt5=True)
        == b"\x3b\x08\x00\x01t\x00\x05\x00xy"
    )
    plain = wire.publish("t", b"", 1, retain=False, dup=False, mqtt5=False)
    assert plain == b"\x32\x05\x00\x01t\x00\x01"
    assert wire.pubacks([1, 258]) == b"\x40\x02\x00\x01\x40\x02\x01\x02"


def test_read_packets_takes_complete_packets_and_keeps_a_partial_one() -> None:
    stream = (
        _publish_bytes(b"vehicles/V/telemetry", 1, b"{}", b"")
        + b"\xd0\x00"  # PINGRESP
        + _publish_bytes(b"vehicles/V/state", None, b"x" * 300, b"")
    )
    for cut in range(1, len(stream)):  # every split of the stream over two reads
        buffer = bytearray(stream[:cut])
        publishes: list[wire.Publish] = []
        others: list[wire.Packet] = []
        wire.read_packets(buffer, True, publishes, others)
        buffer += stream[cut:]
        wire.read_packets(buffer, True, publishes, others)
        assert not buffer
        assert [p.topic for p in publishes] == ["vehicles/V/telemetry", "vehicles/V/state"]
        assert [(p.qos, p.mid, len(p.payload)) for p in publishes] == [(1, 1, 2), (0, 0, 300)]
        assert [o.kind for o in others] == [wire.PINGRESP]


def test_publish_properties_give_the_content_type_and_are_skipped() -> None:
    ctype = b"application/cbor"
    props = (
        b"\x01\x01"  # payload format indicator
        + b"\x02\x00\x00\x00\x3c"  # message expiry
        + b"\x03" + len(ctype).to_bytes(2, "big") + ctype
        + b"\x26\x00\x01k\x00\x01v"  # a user property
        + b"\x0b\x81\x01"  # subscription identifier 129 (two-byte varint)
    )  # fmt: skip
    buffer = bytearray(_publish_bytes(b"t/x", 9, b"payload", props))
    publishes: list[wire.Publish] = []
    wire.read_packets(buffer, True, publishes, [])
    (p,) = publishes
    assert (p.topic, p.payload, p.mid, p.content_type) == ("t/x", b"payload", 9, "application/cbor")
    assert wire.properties(props)[0x26] == [("k", "v")]
    assert wire.properties(props)[0x0B] == 129


def test_mqtt311_publish_has_no_properties() -> None:
    buffer = bytearray(_publish_bytes(b"t", 3, b"\x00body", None))
    publishes: list[wire.Publish] = []
    wire.read_packets(buffer, False, publishes, [])
    assert publishes[0].payload == b"\x00body"


@pytest.mark.parametrize(
    ("stream", "message"),
    [
        (b"\x30\xff\xff\xff\xff\x01", "remaining length"),
        (b"\x30\x01\x00", "too short"),
        (b"\x36\x03\x00\x01t", "QoS 3"),
        (b"\x32\x04\x00\x01t\x00", "packet id"),
        (b"\x30\x04\x00\x02\xff\xfe", "UTF-8"),
        (b"\x30\x05\x00\x01t\x05\x99", "properties"),
    ],
)
def test_malformed_packets_are_wire_errors(stream: bytes, message: str) -> None:
    with pytest.raises(wire.WireError, match=message):
        wire.read_packets(bytearray(stream), True, [], [])


def test_connack_suback_puback() -> None:
    assert wire.connack(b"\x01\x00\x03\x21\x00\x14", True) == wire.Connack(True, 0, 20, None)
    refused = wire.connack(b"\x00\x87\x05\x1f\x00\x02no", True)
    assert (refused.code, refused.reason) == (0x87, "no")
    assert wire.refusal(0x87, True) == "not authorised"
    assert wire.refusal(5, False) == "not authorised"
    assert wire.connack(b"\x00\x00", False).receive_maximum == 65535
    assert wire.suback_codes(b"\x00\x01\x00\x01\x87", True) == (1, [1, 0x87])
    assert wire.suback_codes(b"\x00\x02\x01", False) == (2, [1])
    assert wire.puback_of(b"\x00\x05") == (5, 0)
    assert wire.puback_of(b"\x00\x05\x87\x00") == (5, 0x87)


def test_truncated_properties_are_wire_errors() -> None:
    for raw in (b"\x03\x00\x09ab", b"\x21\x00", b"\x26\x00\x01k"):
        with pytest.raises(wire.WireError, match="past the packet"):
            wire.properties(raw)


def test_the_disconnect_that_ends_a_session_sets_its_expiry_to_zero() -> None:
    packet = wire.disconnect_ending_session()
    others: list[wire.Packet] = []
    wire.read_packets(bytearray(packet), True, [], others)
    [disconnect] = others
    assert disconnect.kind == wire.DISCONNECT
    assert disconnect.body[0] == 0  # reason: normal disconnection
    assert wire.properties(disconnect.body[2:]) == {wire.SESSION_EXPIRY: 0}
    assert disconnect.body[1] == len(disconnect.body) - 2  # the properties' length
