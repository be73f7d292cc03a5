"""Pending `for_s` waits are durable: a restart in the middle of a wait resumes it.

A signal rule with a minimum duration keeps "the condition holds since vehicle time T" per
(rule, vehicle, signal). That state is written in the ingest transaction when a wait starts
or ends (never per sample), restored at start, and not kept when the commit fails.
"""

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from autocloud.bootstrap import build
from autocloud.domain.alerts import PendingWait
from autocloud.domain.clock import FixedClock
from autocloud.entrypoints.api.app import create_app
from autocloud.settings import load_settings
from tests.api.conftest import NOW, Env, TestClient, build_env, raw
from tests.api.test_alerts_ingest import COOLANT, alerts, fail_then_retry, rule

HOT = {"path": COOLANT, "op": ">", "threshold": 110, "for_s": 60, "hysteresis": 5}
SPEED = "Vehicle.Speed"


class Platforms:
    """The platform of one data directory, restarted at will; the last one is stopped at
    the end of the test."""

    def __init__(self, tmp_path: Path) -> None:
        self.path = tmp_path
        self.env = build_env(tmp_path)

    def restart(self) -> Env:
        old = self.env
        self.stop()
        platform = build(load_settings(data_dir=self.path), clock=FixedClock(NOW))
        client = TestClient(create_app(platform))
        self.env = Env(platform, client, old.group_token, old.alpha, old.beta, old.seq)
        return self.env

    def stop(self) -> None:
        self.env.client.close()
        self.env.platform.stop()


@pytest.fixture
def platforms(tmp_path: Path, clean_environ: None) -> Iterator[Platforms]:
    made = Platforms(tmp_path)
    yield made
    made.stop()


def waits(env: Env) -> list[PendingWait]:
    return env.platform.store.alerts.pending_waits()


def test_a_restart_in_the_middle_of_a_wait_resumes_it(platforms: Platforms) -> None:
    env = platforms.env
    made = rule(env, signal=HOT)
    vin, t0 = env.alpha.vin, NOW - 300_000
    env.send(vin, t0, {COOLANT: 112.0})  # the minute starts
    env.send(vin, t0 + 10_000, {COOLANT: 115.0})  # still holding: nothing new is written
    [wait] = waits(env)
    assert (wait.rule_id, wait.key, wait.since, wait.value) == (made["id"], COOLANT, t0, 112.0)

    env = platforms.restart()
    env.send(vin, t0 + 30_000, {COOLANT: 113.0})
    env.send(vin, t0 + 50_000, {SPEED: 20.0})
    assert alerts(env) == []  # 50 s of vehicle time: not yet
    env.send(vin, t0 + 60_000, {SPEED: 21.0})  # 60 s since t0, across the restart
    [a] = alerts(env, state="open")
    assert (a["opened_ts"], a["key"], a["value"]) == (t0 + 60_000, COOLANT, 112.0)
    assert waits(env) == []  # the wait ended: its alert is open

    env = platforms.restart()  # the open alert, not a wait, is what comes back
    env.send(vin, t0 + 70_000, {COOLANT: 104.0})
    assert [x["state"] for x in alerts(env)] == ["resolved"]


def test_a_wait_that_ended_before_the_restart_stays_ended(platforms: Platforms) -> None:
    env = platforms.env
    rule(env, signal=HOT)
    vin, t0 = env.alpha.vin, NOW - 300_000
    env.send(vin, t0, {COOLANT: 112.0})
    env.send(vin, t0 + 20_000, {COOLANT: 100.0})  # dips: the wait ends
    assert waits(env) == []
    env = platforms.restart()
    env.send(vin, t0 + 30_000, {COOLANT: 112.0})  # a new wait from here
    env.send(vin, t0 + 80_000, {SPEED: 20.0})
    assert alerts(env) == []  # 50 s of the new wait (80 s since the first one began)
    env.send(vin, t0 + 90_000, {SPEED: 20.0})
    assert [a["opened_ts"] for a in alerts(env)] == [t0 + 90_000]


def test_a_wait_in_a_failed_commit_is_kept_nowhere(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Rolled back with the batch: neither written nor adopted; the retry starts it."""
    rule(env, signal=HOT)
    vin, t0 = env.alpha.vin, NOW - 300_000
    env.seq += 1
    body = {"v": 1, "sid": "s1", "seq": env.seq, "ts": t0, "signals": {COOLANT: 112.0}}
    store = env.platform.store.telemetry
    real = store.commit
    monkeypatch.setattr(store, "commit", _failing)
    with pytest.raises(RuntimeError):
        env.platform.ingest.handle([raw(vin, json.dumps(body).encode())])
    monkeypatch.setattr(store, "commit", real)
    assert waits(env) == []
    env.send(vin, t0 + 60_000, {COOLANT: 113.0})  # had the failed batch counted: an alert
    assert alerts(env) == []
    [wait] = waits(env)
    assert wait.since == t0 + 60_000


def _failing(batch: Any, **_options: Any) -> None:
    raise RuntimeError("simulated commit failure")


def test_a_retried_batch_writes_its_wait_once(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    rule(env, signal=HOT)
    vin, t0 = env.alpha.vin, NOW - 300_000
    env.seq += 1
    body = {"v": 1, "sid": "s1", "seq": env.seq, "ts": t0, "signals": {COOLANT: 112.0}}
    fail_then_retry(env, monkeypatch, raw(vin, json.dumps(body).encode()))
    assert [(w.since, w.value) for w in waits(env)] == [(t0, 112.0)]
    env.send(vin, t0 + 60_000, {SPEED: 3.0})
    assert [a["opened_ts"] for a in alerts(env)] == [t0 + 60_000]


def test_changing_or_deleting_the_rule_drops_its_waits(env: Env) -> None:
    made = rule(env, signal=HOT)
    vin, t0 = env.alpha.vin, NOW - 300_000
    env.send(vin, t0, {COOLANT: 112.0})
    assert len(waits(env)) == 1
    h = env.alpha.h("operator")
    r = env.client.put(
        f"/v1/alert-rules/{made['id']}", json={"name": "r2", "signal": HOT}, headers=h
    )
    assert r.status_code == 200, r.text
    assert waits(env) == []  # the wait was under the old condition
    env.send(vin, t0 + 60_000, {COOLANT: 113.0})  # starts anew under the new one
    assert alerts(env) == [] and [w.since for w in waits(env)] == [t0 + 60_000]
    assert env.client.delete(f"/v1/alert-rules/{made['id']}", headers=h).status_code == 204
    assert waits(env) == []
