"""The car's answer to a key list (`keys/result`): decoding, and what the platform makes of
the serial it confirmed (`KeyListState.status`)."""

from typing import Any

import msgspec
import pytest

from autocloud.domain.command_keyset import KeyListState, KeyListSync
from autocloud.domain.protocol import (
    KeyListResult,
    KeyListStatus,
    ProtocolError,
    Reason,
    Topic,
    decode,
    split_topic,
)

VIN = "WVWZZZ1JZXW000001"
NOW = 1_767_225_600_000


def body(**extra: Any) -> bytes:
    return msgspec.json.encode({"v": 1, "sid": "s1", "seq": 7, "ts": NOW, **extra})


def test_topic_and_both_answers_decode() -> None:
    assert split_topic(f"vehicles/{VIN}/keys/result") == (VIN, Topic.KEYS_RESULT)
    applied = decode(Topic.KEYS_RESULT, body(status="applied", serial=3))
    assert applied == KeyListResult(1, "s1", 7, NOW, KeyListStatus.APPLIED, 3)
    refused = decode(Topic.KEYS_RESULT, body(status="refused", serial=4, reason="bad_signature"))
    assert isinstance(refused, KeyListResult) and refused.reason == "bad_signature"
    unreadable = decode(Topic.KEYS_RESULT, body(status="refused", reason="malformed"))
    assert isinstance(unreadable, KeyListResult) and unreadable.serial is None


@pytest.mark.parametrize(
    ("fields", "fragment"),
    [
        ({"status": "applied"}, "needs its serial"),
        ({"status": "refused", "serial": 2}, "needs a reason"),
        ({"status": "refused", "serial": 2, "reason": ""}, "needs a reason"),
        ({"status": "done", "serial": 2}, "status"),
        ({"status": "applied", "serial": -1}, "serial"),
        ({"status": "applied", "serial": 1, "keys": []}, "keys"),
        ({"status": "refused", "reason": "x" * 501}, "reason"),
        ({"status": "refused", "reason": "nul\x00"}, "reason"),
    ],
)
def test_bad_answers_are_schema_errors(fields: dict[str, Any], fragment: str) -> None:
    with pytest.raises(ProtocolError) as caught:
        decode(Topic.KEYS_RESULT, body(**fields))
    assert caught.value.reason is Reason.SCHEMA
    assert fragment in caught.value.detail


@pytest.mark.parametrize(
    ("state", "status", "behind"),
    [
        (KeyListState(None), KeyListSync.NONE, None),
        (KeyListState(3), KeyListSync.PENDING, 3),  # sent, never confirmed
        (KeyListState(3, 2, NOW, NOW), KeyListSync.PENDING, 1),  # the car lags
        (KeyListState(3, 3, NOW, NOW), KeyListSync.APPLIED, 0),
        # Refused the newest list: refused. Refused an older one, since sent a newer: pending.
        (KeyListState(3, 2, NOW, NOW, 3, "bad_signature", NOW, NOW + 1), KeyListSync.REFUSED, 1),
        (KeyListState(4, 2, NOW, NOW, 3, "bad_signature", NOW, NOW + 1), KeyListSync.PENDING, 2),
        # A refusal of a list the platform never sent (forged, serial 9) does not hide that
        # the newest real list was applied.
        (KeyListState(3, 3, NOW, NOW, 9, "unknown_key", NOW, NOW + 1), KeyListSync.APPLIED, 0),
        # An unreadable list: current if it came after the last confirmation.
        (KeyListState(3, 2, NOW, NOW, None, "malformed", NOW, NOW + 1), KeyListSync.REFUSED, 1),
        (KeyListState(3, 2, NOW, NOW + 5, None, "malformed", NOW, NOW), KeyListSync.PENDING, 1),
        (KeyListState(3, None, None, None, None, "malformed", NOW, NOW), KeyListSync.REFUSED, 3),
    ],
)
def test_key_list_status(state: KeyListState, status: KeyListSync, behind: int | None) -> None:
    assert (state.status, state.behind) == (status, behind)
