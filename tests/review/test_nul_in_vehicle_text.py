"""Review: text from a vehicle with a NUL character (valid JSON: "\\u0000") must not reach a
PostgreSQL text column, which refuses it: the message would fail its commit and end as an
unexplained `internal_error`. A command result's `reason` is the free text of the replies;
one with a NUL is refused with a clear schema reason, on both databases, and the command is
left as it was."""

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.api.conftest import NOW, Env, build_env, raw, state

VEHICLE_TEXT = ["a\x00b", "\x00"]


@pytest.fixture
def both(db_url: str, tmp_path: Path, clean_environ: None) -> Iterator[Env]:
    built = build_env(tmp_path, db_url)
    yield built
    built.client.close()
    built.platform.stop()


@pytest.mark.parametrize("reason", VEHICLE_TEXT)
def test_a_nul_in_a_result_reason_is_a_clear_dead_letter(both: Env, reason: str) -> None:
    a = both.alpha
    both.ingest(state(a.vin, True, NOW - 1000))
    r = both.client.post(f"/v1/vehicles/{a.vin}/commands", json={"name": "lock"}, headers=a.h())
    assert r.status_code == 201, r.text
    command = r.json()
    body = {"v": 1, "sid": "car", "seq": 1, "ts": NOW - 100, "id": command["id"]}
    body |= {"status": "rejected", "reason": reason}
    batch = both.ingest(raw(a.vin, json.dumps(body).encode(), "commands/result"))
    reasons = [d.reason for d in batch.out.dead_letters]
    assert reasons == ["schema"], reasons
    got = both.client.get(f"/v1/commands/{command['id']}", headers=a.h()).json()
    assert got["state"] == "sent"
