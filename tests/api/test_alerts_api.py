"""The alert-rule, alert and health routes: validation, roles, tenancy, pagination."""

import json
from typing import Any

import pytest

from tests.api.conftest import NOW, Env, raw

COOLANT = "Vehicle.Powertrain.CombustionEngine.EngineCoolant.Temperature"
HOT = {"path": COOLANT, "op": ">", "threshold": 110}


def test_rule_crud(env: Env) -> None:
    h = env.alpha.h("operator")
    made = env.client.post("/v1/alert-rules", json={"name": " hot ", "signal": HOT}, headers=h)
    assert made.status_code == 201, made.text
    rule = made.json()
    assert (rule["brand"], rule["name"], rule["severity"], rule["event"]) == (
        "alpha",
        "hot",
        "warning",
        None,
    )
    assert rule["signal"] == {**HOT, "threshold": 110.0, "hysteresis": 0.0, "for_s": 0.0}
    assert rule["created_by"] == "alpha-operator"
    url = f"/v1/alert-rules/{rule['id']}"
    assert env.client.get(url, headers=env.alpha.h("viewer")).json() == rule
    changed = env.client.put(
        url,
        json={"name": "hotter", "severity": "critical", "signal": {**HOT, "threshold": 115}},
        headers=h,
    )
    assert changed.status_code == 200, changed.text
    assert (changed.json()["name"], changed.json()["signal"]["threshold"]) == ("hotter", 115.0)
    listed = env.client.get("/v1/alert-rules", headers=env.alpha.h("viewer")).json()
    assert [r["name"] for r in listed["items"]] == ["hotter"]
    assert env.client.delete(url, headers=h).status_code == 204
    assert env.client.get(url, headers=h).status_code == 404
    assert env.client.delete(url, headers=h).status_code == 404


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({"name": "x"}, "exactly one condition"),
        ({"name": "x", "signal": {**HOT, "path": "Vehicle.Nope"}}, "not a known signal"),
        ({"name": "x", "signal": {**HOT, "op": "~"}}, "operator '~'"),
        ({"name": "x", "signal": {**HOT, "hysteresis": -1}}, "hysteresis"),
        ({"name": "x", "event": {"type": "dtc.raised", "codes": ["Q1"]}}, "not the start of a DTC"),
        ({"name": "", "signal": HOT}, "rule name"),
        ({"name": "x", "severity": "fatal", "signal": HOT}, "severity"),
    ],
)
def test_rule_validation_errors_are_clear(env: Env, body: dict[str, Any], fragment: str) -> None:
    r = env.client.post("/v1/alert-rules", json=body, headers=env.alpha.h("admin"))
    assert r.status_code == 422, r.text
    assert r.headers["content-type"] == "application/problem+json"
    assert fragment in r.json()["detail"]


def test_roles_and_brand_of_rules(env: Env) -> None:
    body = {"name": "hot", "signal": HOT}
    assert (
        env.client.post("/v1/alert-rules", json=body, headers=env.alpha.h("viewer")).status_code
        == 403
    )
    r = env.client.post("/v1/alert-rules", json=body, headers=env.g)
    assert r.status_code == 422 and "name the rule's brand" in r.json()["detail"]
    r = env.client.post("/v1/alert-rules", json={**body, "brand": "nosuch"}, headers=env.g)
    assert r.status_code == 404
    r = env.client.post("/v1/alert-rules", json={**body, "brand": "beta"}, headers=env.g)
    assert r.status_code == 201 and r.json()["brand"] == "beta"
    moved = env.client.put(
        f"/v1/alert-rules/{r.json()['id']}", json={**body, "brand": "alpha"}, headers=env.g
    )
    assert moved.status_code == 422 and "stays with its brand" in moved.json()["detail"]
    assert env.client.get("/v1/alert-rules", headers=env.alpha.h("admin")).json()["items"] == []


def _event(env: Env, vin: str, ts: int, kind: str, code: str) -> None:
    env.seq += 1
    body = {"v": 1, "sid": "s1", "seq": env.seq, "ts": ts, "type": kind, "data": {"code": code}}
    env.ingest(raw(vin, json.dumps(body).encode(), "events"))


def test_alert_list_filters_and_pages(env: Env) -> None:
    h = env.alpha.h("operator")
    env.client.post(
        "/v1/alert-rules", json={"name": "any dtc", "event": {"type": "dtc.raised"}}, headers=h
    )
    for n in range(3):  # three episodes of the one rule
        _event(env, env.alpha.vin, NOW - 10_000 + 2 * n, "dtc.raised", "P0420")
        _event(env, env.alpha.vin, NOW - 10_000 + 2 * n + 1, "dtc.cleared", "P0420")
    _event(env, env.alpha.vin, NOW - 1_000, "dtc.raised", "P0420")
    page = env.client.get("/v1/alerts", params={"limit": 2}, headers=h).json()
    assert len(page["items"]) == 2 and page["next"]
    rest = env.client.get("/v1/alerts", params={"limit": 2, "cursor": page["next"]}, headers=h)
    ids = [a["id"] for a in page["items"] + rest.json()["items"]]
    assert ids == sorted(ids, reverse=True) and len(ids) == 4
    states = {
        s: len(env.client.get("/v1/alerts", params={"state": s}, headers=h).json()["items"])
        for s in ("open", "acknowledged", "resolved")
    }
    assert states == {"open": 1, "acknowledged": 0, "resolved": 3}
    by_vin = env.client.get("/v1/alerts", params={"vin": env.alpha.vin.lower()}, headers=h)
    assert len(by_vin.json()["items"]) == 4
    bad = env.client.get("/v1/alerts", params={"state": "closed"}, headers=h)
    assert bad.status_code == 422
    one = env.client.get(f"/v1/alerts/{ids[0]}", headers=h).json()
    assert (one["state"], one["rule"]) == ("open", "any dtc")
    viewer = env.client.post(f"/v1/alerts/{ids[0]}/ack", headers=env.alpha.h("viewer"))
    assert viewer.status_code == 403
    resolved = env.client.post(f"/v1/alerts/{ids[1]}/ack", headers=h)
    assert resolved.status_code == 409


def test_fleet_health(env: Env) -> None:
    _event(env, env.alpha.vin, NOW - 5_000, "dtc.raised", "P0301")
    _event(env, env.alpha.vin, NOW - 4_000, "dtc.raised", "P0420")
    _event(env, env.beta.vin, NOW - 3_000, "dtc.raised", "B0001")
    alpha = env.client.get("/v1/fleet/health", headers=env.alpha.h("viewer")).json()
    assert alpha["vehicles_with_codes"] == 1
    assert alpha["codes_by_severity"] == {"critical": 1, "warning": 1, "info": 0}
    assert alpha["vehicles_by_worst"] == {"critical": 1, "warning": 0, "info": 0}
    assert [(c["code"], c["vehicles"]) for c in alpha["by_code"]] == [("P0301", 1), ("P0420", 1)]
    assert alpha["by_model"] == [{"model": "Arrow", "vehicles": 1, "critical": 1}]
    assert [(v["vin"], v["codes"]) for v in alpha["critical"]] == [(env.alpha.vin, ["P0301"])]
    group = env.client.get("/v1/fleet/health", headers=env.g).json()
    assert group["vehicles_with_codes"] == 2
    beta = env.client.get("/v1/fleet/health", params={"brand": "beta"}, headers=env.g).json()
    assert [c["code"] for c in beta["by_code"]] == ["B0001"]
    foreign = env.client.get("/v1/fleet/health", params={"brand": "beta"}, headers=env.alpha.h())
    assert foreign.status_code == 404


def test_vehicle_health_without_catalog_still_decodes(env: Env) -> None:
    _event(env, env.alpha.vin, NOW - 5_000, "dtc.raised", "U0151")
    h = env.client.get(f"/v1/vehicles/{env.alpha.vin}/health", headers=env.alpha.h("viewer")).json()
    [code] = h["active"]
    assert code["description"] is None  # no dtc_catalog_path in this platform
    assert (code["system"], code["severity"]) == ("network", "critical")
    assert "airbag" in code["severity_reason"]
    r = env.client.get(f"/v1/vehicles/{env.beta.vin}/health", headers=env.alpha.h("viewer"))
    assert r.status_code == 404


def test_twin_shows_active_codes(env: Env) -> None:
    twin = env.client.get(f"/v1/vehicles/{env.alpha.vin}/twin", headers=env.alpha.h("viewer"))
    assert twin.json()["active_dtcs"] == []
    _event(env, env.alpha.vin, NOW - 5_000, "dtc.raised", "P0420")
    _event(env, env.alpha.vin, NOW - 4_000, "dtc.raised", "P0301")
    twin = env.client.get(f"/v1/vehicles/{env.alpha.vin}/twin", headers=env.alpha.h("viewer"))
    codes = twin.json()["active_dtcs"]
    assert [(c["code"], c["severity"]) for c in codes] == [
        ("P0301", "critical"),
        ("P0420", "warning"),
    ]
    _event(env, env.alpha.vin, NOW - 3_000, "dtc.cleared", "P0301")
    twin = env.client.get(f"/v1/vehicles/{env.alpha.vin}/twin", headers=env.alpha.h("viewer"))
    assert [c["code"] for c in twin.json()["active_dtcs"]] == ["P0420"]
