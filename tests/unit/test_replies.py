"""Vehicle replies (command results, diagnostic responses) through decoding and ingest.

They carry the vehicle envelope (v, sid, seq, ts), are deduplicated like telemetry, and
reach the store as `Reply` records in the same batch; a reply type the store has no writer
for makes the commit fail rather than be acknowledged unstored.
"""

from typing import Any

import msgspec
import pytest
from sqlalchemy import create_engine

from autocloud.adapters.sql.extras import NoWriter, Writers
from autocloud.adapters.sqlite import DIALECT
from autocloud.domain.protocol import (
    CommandResult,
    CommandStatus,
    DiagResponse,
    ProtocolError,
    Reason,
    Topic,
    decode,
    split_topic,
)
from autocloud.domain.records import Reply, WriteBatch
from tests.unit.test_ingest_pipeline import NOW, A, env, msg  # noqa: F401  (fixture)

VIN = "WVWZZZ1JZXW000001"


def result(seq: int, **extra: Any) -> dict[str, Any]:
    body = {"v": 1, "sid": "s1", "seq": seq, "ts": NOW - 500, "id": "c-1", "status": "succeeded"}
    return {**body, **extra}


def diag(seq: int, response: str = "62f190" + "57" * 17) -> dict[str, Any]:
    body = {"v": 1, "sid": "s1", "seq": seq, "ts": NOW - 500, "id": "d-1", "ecu": "ECM"}
    return {**body, "response": response}


def test_two_level_sub_topics() -> None:
    assert split_topic(f"vehicles/{VIN}/commands/result") == (VIN, Topic.COMMAND_RESULT)
    assert split_topic(f"vehicles/{VIN}/diag/response") == (VIN, Topic.DIAG_RESPONSE)


def test_decode_replies() -> None:
    got = decode(Topic.COMMAND_RESULT, msgspec.json.encode(result(3, reason="moving")))
    assert isinstance(got, CommandResult)
    assert got.status is CommandStatus.SUCCEEDED and got.reason == "moving"
    answer = decode(Topic.DIAG_RESPONSE, msgspec.json.encode(diag(4)))
    assert isinstance(answer, DiagResponse) and answer.response.startswith("62f190")


@pytest.mark.parametrize(
    ("kind", "body"),
    [
        (Topic.COMMAND_RESULT, result(1, status="done")),  # not a status
        (Topic.COMMAND_RESULT, result(1, id="")),  # empty id
        (Topic.COMMAND_RESULT, result(1, reason="x" * 501)),  # too long
        (Topic.DIAG_RESPONSE, diag(1, response="62f")),  # odd number of hex digits
        (Topic.DIAG_RESPONSE, diag(1, response="zz")),  # not hex
        (Topic.DIAG_RESPONSE, {**diag(1), "ecu": "ECM 1"}),  # not a name
    ],
)
def test_bad_replies_are_schema_errors(kind: Topic, body: dict[str, Any]) -> None:
    with pytest.raises(ProtocolError) as info:
        decode(kind, msgspec.json.encode(body))
    assert info.value.reason is Reason.SCHEMA


def test_replies_ride_in_the_batch_and_are_deduplicated(env: Any) -> None:  # noqa: F811
    service, _store, link = env
    batch = service.handle(
        [
            msg(A, result(1), "commands/result"),
            msg(A, result(1), "commands/result"),  # resent: a duplicate
            msg(A, diag(2), "diag/response"),
            msg(A, result(3, ts=NOW + 3_600_000), "commands/result"),  # an hour ahead
        ]
    )
    replies = batch.out.replies
    assert [type(r.message) for r in replies] == [CommandResult, DiagResponse]
    assert all(r.vin == A and r.brand == "alpha" and r.vehicle_id == 1 for r in replies)
    assert sorted(d.reason for d in batch.out.dead_letters) == ["duplicate", "future_timestamp"]
    assert len(link.acked) == 4


def test_a_reply_without_a_writer_is_refused_by_the_store() -> None:
    engine = create_engine("sqlite://")
    writers, seen = Writers(), []
    writers.reply(CommandResult, lambda conn, dialect, items: seen.extend(items))
    command = decode(Topic.COMMAND_RESULT, msgspec.json.encode(result(1)))
    answer = decode(Topic.DIAG_RESPONSE, msgspec.json.encode(diag(2)))
    batch = WriteBatch(replies=[Reply(1, VIN, "alpha", NOW, command)])
    with engine.begin() as conn:
        writers.write(conn, DIALECT, batch)
    assert [r.message for r in seen] == [command]
    batch.replies.append(Reply(1, VIN, "alpha", NOW, answer))
    with pytest.raises(NoWriter, match="DiagResponse"), engine.begin() as conn:
        writers.write(conn, DIALECT, batch)
