"""DTCs and alert rules through the real ingest pipeline and commit (SQLite), end to end.

Messages go in through `platform.ingest.handle` (every stage, one transaction, the
after-commit listeners); what they did is read back through the API.
"""

import json
from pathlib import Path
from typing import Any

import pytest

from autocloud.bootstrap import build
from autocloud.domain.clock import FixedClock
from autocloud.domain.errors import StoreUnavailable
from autocloud.entrypoints.api.app import create_app
from autocloud.ports.link import Inbound
from autocloud.services.fanout import Change
from autocloud.settings import load_settings
from tests.api.conftest import NOW, Env, TestClient, build_env, raw

COOLANT = "Vehicle.Powertrain.CombustionEngine.EngineCoolant.Temperature"
VOLTS = "Vehicle.LowVoltageBattery.CurrentVoltage"
MOVING = "Vehicle.IsMoving"
FL = "Vehicle.Chassis.Axle.Row1.Wheel.Left.Tire.Pressure"
RR = "Vehicle.Chassis.Axle.Row2.Wheel.Right.Tire.Pressure"
DTC_LIST = "Vehicle.Diagnostics.DTCList"


@pytest.fixture
def published(env: Env, monkeypatch: pytest.MonkeyPatch) -> list[Change]:
    """Every change the platform publishes to the live stream."""
    seen: list[Change] = []
    original = env.platform.hub.publish

    def record(changes: list[Change]) -> None:
        seen.extend(changes)
        original(changes)

    monkeypatch.setattr(env.platform.hub, "publish", record)
    return seen


def event(env: Env, vin: str, ts: int, kind: str, data: dict[str, Any]) -> None:
    env.seq += 1
    body = {"v": 1, "sid": "s1", "seq": env.seq, "ts": ts, "type": kind, "data": data}
    batch = env.ingest(raw(vin, json.dumps(body).encode(), "events"))
    assert [d.detail for d in batch.out.dead_letters] == []


def rule(env: Env, **body: Any) -> dict[str, Any]:
    r = env.client.post(
        "/v1/alert-rules", json={"name": "r", **body}, headers=env.alpha.h("operator")
    )
    assert r.status_code == 201, r.text
    return dict(r.json())


def alerts(env: Env, **params: Any) -> list[dict[str, Any]]:
    r = env.client.get("/v1/alerts", params=params, headers=env.alpha.h("viewer"))
    assert r.status_code == 200, r.text
    return list(r.json()["items"])


def health(env: Env) -> dict[str, Any]:
    r = env.client.get(f"/v1/vehicles/{env.alpha.vin}/health", headers=env.alpha.h("viewer"))
    assert r.status_code == 200, r.text
    return dict(r.json())


def test_dtc_raise_makes_an_active_code_and_a_critical_alert_and_clearing_resolves(
    env: Env, published: list[Change]
) -> None:
    rule(env, severity="critical", event={"type": "dtc.raised", "severity": "critical"})
    vin = env.alpha.vin
    frame = {"Vehicle.Speed": 52.5, COOLANT: 91.0}
    event(env, vin, NOW - 9_000, "dtc.raised", {"code": "P0301", "freeze_frame": frame})

    h = health(env)
    assert h["worst"] == "critical" and h["since_ms"] == NOW - 9_000
    [code] = h["active"]
    assert (code["code"], code["severity"], code["system"]) == ("P0301", "critical", "powertrain")
    assert code["subsystem"] == "ignition system or misfire" and code["freeze_frame"] == frame
    [opened] = alerts(env, state="open")
    assert (opened["severity"], opened["value"], opened["vin"]) == ("critical", ["P0301"], vin)
    kinds = [(c.kind, c.data.get("state")) for c in published if c.kind in ("dtc", "alert")]
    assert kinds == [("dtc", None), ("alert", "open")]

    # The same fault reported again (event and list): still one alert, no new transition.
    event(env, vin, NOW - 8_000, "dtc.raised", {"code": "p0301"})
    env.send(vin, NOW - 7_500, {DTC_LIST: ["P0301"]})
    assert len(alerts(env)) == 1 and len(health(env)["recent"]) == 1

    event(env, vin, NOW - 7_000, "dtc.cleared", {"code": "P0301"})
    h = health(env)
    assert (h["active"], h["worst"]) == ([], None)
    assert [(t["code"], t["raised"]) for t in h["recent"]] == [("P0301", False), ("P0301", True)]
    [resolved] = alerts(env)
    assert (resolved["id"], resolved["state"]) == (opened["id"], "resolved")
    assert resolved["resolved_reason"] == "codes cleared"
    assert published[-1].kind == "alert" and published[-1].data["state"] == "resolved"


def test_dtc_list_alone_raises_and_clears_and_bad_entries_are_dead_letters(env: Env) -> None:
    rule(env, event={"type": "dtc.raised", "codes": ["P04"]})
    batch = env.send(env.alpha.vin, NOW - 5_000, {DTC_LIST: ["P0420", "P0128", "bogus"]})
    assert [d.reason for d in batch.out.dead_letters] == ["not_allowed"]
    assert "bogus" in batch.out.dead_letters[0].detail
    assert {c["code"] for c in health(env)["active"]} == {"P0420", "P0128"}
    assert [a["value"] for a in alerts(env, state="open")] == [["P0420"]]
    env.send(env.alpha.vin, NOW - 4_000, {DTC_LIST: ["P0128"]})
    assert [c["code"] for c in health(env)["active"]] == ["P0128"]
    assert alerts(env, state="open") == []


def test_a_dtc_event_without_a_valid_code_is_kept_and_dead_lettered(env: Env) -> None:
    env.seq += 1
    body = {"v": 1, "sid": "s1", "seq": env.seq, "ts": NOW - 1, "type": "dtc.raised", "data": {}}
    batch = env.ingest(raw(env.alpha.vin, json.dumps(body).encode(), "events"))
    assert [d.reason for d in batch.out.dead_letters] == ["schema"]
    assert "data.code" in batch.out.dead_letters[0].detail
    assert batch.out.events  # the event itself is stored as sent
    assert health(env)["active"] == []


def test_coolant_over_110_for_60_s_with_hysteresis_and_acknowledge(env: Env) -> None:
    rule(env, signal={"path": COOLANT, "op": ">", "threshold": 110, "for_s": 60, "hysteresis": 5})
    vin, t0 = env.alpha.vin, NOW - 200_000
    env.send(vin, t0, {COOLANT: 112.0})
    env.send(vin, t0 + 30_000, {COOLANT: 109.0})  # dips: the minute starts over
    env.send(vin, t0 + 40_000, {COOLANT: 113.0})
    env.send(vin, t0 + 90_000, {"Vehicle.Speed": 40.0})  # 50 s: not yet
    assert alerts(env) == []
    env.send(vin, t0 + 100_000, {"Vehicle.Speed": 41.0})  # 60 s of vehicle time, no new value
    [a] = alerts(env, state="open")
    assert a["opened_ts"] == t0 + 100_000 and a["key"] == COOLANT and a["value"] == 113.0

    r = env.client.post(f"/v1/alerts/{a['id']}/ack", headers=env.alpha.h("operator"))
    assert r.status_code == 200, r.text
    assert (r.json()["state"], r.json()["acked_by"]) == ("acknowledged", "alpha-operator")
    again = env.client.post(f"/v1/alerts/{a['id']}/ack", headers=env.alpha.h("operator"))
    assert again.status_code == 409 and "acknowledged" in again.json()["detail"]

    env.send(vin, t0 + 110_000, {COOLANT: 106.0})  # below 110, not below 105: stays
    assert alerts(env)[0]["state"] == "acknowledged"
    env.send(vin, t0 + 120_000, {COOLANT: 104.9})
    [done] = alerts(env)
    assert (done["state"], done["resolved_ts"]) == ("resolved", t0 + 120_000)
    env.send(vin, t0 + 130_000, {COOLANT: 120.0})
    env.send(vin, t0 + 190_000, {COOLANT: 120.5})
    assert [x["state"] for x in alerts(env)] == ["open", "resolved"]  # a new episode


def test_12v_low_while_parked(env: Env) -> None:
    rule(
        env,
        signal={
            "path": VOLTS,
            "op": "<",
            "threshold": 11.8,
            "while": {"path": MOVING, "op": "==", "value": False},
        },
    )
    vin = env.alpha.vin
    env.send(vin, NOW - 50_000, {MOVING: True, VOLTS: 11.5})  # driving: no alert
    assert alerts(env) == []
    env.send(vin, NOW - 40_000, {MOVING: False})  # parks; the low value counts now
    assert [a["value"] for a in alerts(env, state="open")] == [11.5]
    env.send(vin, NOW - 30_000, {MOVING: True})  # drives off: the guard ends it
    assert [a["state"] for a in alerts(env)] == ["resolved"]
    env.send(vin, NOW - 20_000, {MOVING: False, VOLTS: 12.6})
    env.send(vin, NOW - 10_000, {VOLTS: 11.7})
    assert [a["state"] for a in alerts(env)] == ["open", "resolved"]


def test_any_tyre_below_180_kpa_is_one_alert(env: Env) -> None:
    rule(
        env,
        signal={
            "path": "Vehicle.Chassis.Axle.*.Wheel.*.Tire.Pressure",
            "op": "<",
            "threshold": 180,
        },
    )
    vin = env.alpha.vin
    env.send(vin, NOW - 50_000, {FL: 230, RR: 175})
    env.send(vin, NOW - 40_000, {FL: 170})
    [a] = alerts(env)
    assert (a["state"], a["key"]) == ("open", RR)
    env.send(vin, NOW - 30_000, {RR: 230})  # one tyre still low: stays open
    assert alerts(env)[0]["state"] == "open"
    env.send(vin, NOW - 20_000, {FL: 229})
    assert [x["state"] for x in alerts(env)] == ["resolved"]


def test_one_shot_event_alert_resolves_when_acknowledged(env: Env) -> None:
    rule(env, event={"type": "alarm.tow"})
    vin = env.alpha.vin
    event(env, vin, NOW - 3_000, "alarm.tow", {"g": 0.3})
    event(env, vin, NOW - 2_000, "alarm.tow", {"g": 0.4})  # deduplicated
    [a] = alerts(env)
    assert a["value"] == {"g": 0.3}
    acked = env.client.post(f"/v1/alerts/{a['id']}/ack", headers=env.alpha.h("operator")).json()
    assert (acked["state"], acked["resolved_reason"]) == ("resolved", "acknowledged")
    event(env, vin, NOW - 1_000, "alarm.tow", {"g": 0.5})
    assert [x["state"] for x in alerts(env)] == ["open", "resolved"]


def fail_then_retry(env: Env, monkeypatch: pytest.MonkeyPatch, message: Inbound) -> None:
    """Ingest `message` with its first commit failing, then once more as redelivered."""
    store = env.platform.store.telemetry
    real = store.commit
    calls = {"n": 0}

    def flaky(batch: Any, **options: Any) -> None:
        calls["n"] += 1
        if calls["n"] == 1:
            raise StoreUnavailable("simulated outage")
        real(batch, **options)

    monkeypatch.setattr(store, "commit", flaky)
    with pytest.raises(StoreUnavailable):
        env.platform.ingest.handle([message])
    env.platform.ingest.handle([Inbound(message.topic, message.payload, NOW)])


def test_failed_commit_is_retried_from_the_same_state(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    rule(env, signal={"path": COOLANT, "op": ">", "threshold": 110})
    env.seq += 1
    body = {"v": 1, "sid": "s1", "seq": env.seq, "ts": NOW - 1_000, "signals": {COOLANT: 120.0}}
    message = raw(env.alpha.vin, json.dumps(body).encode())
    fail_then_retry(env, monkeypatch, message)
    assert [a["state"] for a in alerts(env)] == ["open"]


def test_open_alerts_and_active_codes_survive_a_restart(
    tmp_path: Path, clean_environ: None
) -> None:
    env = build_env(tmp_path)
    rule(env, signal={"path": COOLANT, "op": ">", "threshold": 110, "hysteresis": 5})
    rule(env, event={"type": "dtc.raised"})
    vin = env.alpha.vin
    env.send(vin, NOW - 9_000, {COOLANT: 118.0, MOVING: False})
    event(env, vin, NOW - 8_000, "dtc.raised", {"code": "P0217"})
    env.client.close()
    env.platform.stop()

    platform = build(load_settings(data_dir=tmp_path), clock=FixedClock(NOW))
    again = Env(
        platform, TestClient(create_app(platform)), env.group_token, env.alpha, env.beta, 100
    )
    try:
        assert [c["code"] for c in health(again)["active"]] == ["P0217"]
        again.send(vin, NOW - 7_000, {COOLANT: 104.0})  # the restored alert resolves
        event(again, vin, NOW - 6_000, "dtc.cleared", {"code": "P0217"})
        assert [a["state"] for a in alerts(again)] == ["resolved", "resolved"]
        assert health(again)["active"] == []
    finally:
        again.client.close()
        platform.stop()


def test_a_guard_change_in_a_failed_commit_takes_effect_on_the_retry(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The retried batch must see the guard as it was before the failed attempt."""
    rule(
        env,
        signal={
            "path": VOLTS,
            "op": "<",
            "threshold": 11.8,
            "while": {"path": MOVING, "op": "==", "value": False},
        },
    )
    vin = env.alpha.vin
    env.send(vin, NOW - 50_000, {MOVING: False, VOLTS: 11.5})  # parked and low: open
    assert [a["state"] for a in alerts(env)] == ["open"]
    env.seq += 1
    body = {"v": 1, "sid": "s1", "seq": env.seq, "ts": NOW - 40_000, "signals": {MOVING: True}}
    message = raw(vin, json.dumps(body).encode())
    fail_then_retry(env, monkeypatch, message)
    assert [a["state"] for a in alerts(env)] == ["resolved"]  # driving off ended it
