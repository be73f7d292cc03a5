"""Owner scope: an owner's token sees and commands only the vehicles attached to that owner.

The heart is the owner walk, the wrong-tenant walk of `test_tenancy.py` one level down: in
brand beta, owner Olga has her own car; Bertram's car (beta's vehicle of the tenancy seed)
is in the same brand. The walk calls every /v1 route with Olga's token, filled with
Bertram's things (VIN, command, alert, rule, gateway...), and asserts that:

* a call that names Bertram's thing is refused (403 for routes closed to owners, 404 for
  one of Olga's routes) in problem+json, exactly as a thing that does not exist is,
* no response carries anything of Bertram's (VIN, model, owner, his command),
* a list shows only Olga's vehicle.

The rule lives in one place (`domain/access.py`: `OWNER_ROUTES` and `Principal.vin_filter`);
these tests prove it holds on every route, including the live stream.
"""

import json
from dataclasses import replace
from typing import Any

import pytest

from autocloud.bootstrap import SYSTEM
from autocloud.domain.access import OWNER_ROUTES, Role
from tests.api.conftest import NOW, SOC, SPEED, Env, auth, eu_vin, raw, state
from tests.api.test_tenancy import (
    GHOST,
    PROBLEM_JSON,
    Refs,
    _normalised,
    _sse_data,
    calls,
    endpoints,
    fetch,
    seed,
    snapshot,
    unfillable,
)

OWN_VIN = eu_vin(3)
OWN_MODEL = "Calf"


class Owner:
    """Olga: an owner of brand beta with one car, and her token."""

    def __init__(self, env: Env) -> None:
        registry = env.platform.registry
        made = registry.add_vehicle(SYSTEM, OWN_VIN, "beta", OWN_MODEL)
        owner = registry.add_owner(SYSTEM, "beta", "Olga", "olga@beta.example")
        registry.attach_owner(SYSTEM, OWN_VIN, owner.id)
        _, token = registry.issue_token("olga-app", Role.VIEWER, "beta", owner.id)
        self.id = owner.id
        self.vin = made.vehicle.vin
        self.h = auth(token)


def foreign_marks(env: Env) -> list[str]:
    """Bertram's things that must never reach Olga (beta's brand id and name are hers too)."""
    b = env.beta
    return [b.vin, b.model, b.owner_name, b.owner_email, b.secret, b.command_id]


def _event(env: Env, vin: str, ts: int, kind: str, code: str) -> None:
    env.seq += 1
    body = {"v": 1, "sid": "s1", "seq": env.seq, "ts": ts, "type": kind, "data": {"code": code}}
    env.ingest(raw(vin, json.dumps(body).encode(), "events"))


def seed_owner(env: Env) -> Owner:
    """The tenancy seed (both brands), Olga's car with telemetry, a command, a DTC and an
    alert of beta's "fast" rule, and a DTC on Bertram's car (which has an alert of that rule
    from the seed)."""
    seed(env)
    olga = Owner(env)
    env.ingest(state(olga.vin, True, NOW - 90_000))
    env.send(olga.vin, NOW - 50_000, {SPEED: 0.0, SOC: 70.0})
    env.send(olga.vin, NOW - 45_000, {SPEED: 70.0})  # over beta's "fast" rule: an alert
    r = env.client.post(f"/v1/vehicles/{olga.vin}/commands", json={"name": "lock"}, headers=olga.h)
    assert r.status_code == 201, r.text
    _event(env, olga.vin, NOW - 40_000, "dtc.raised", "P0420")
    _event(env, env.beta.vin, NOW - 40_000, "dtc.raised", "P0301")
    return olga


def _vins_in(value: Any) -> set[str]:
    """Every `vin` field anywhere in a JSON value."""
    found: set[str] = set()
    if isinstance(value, dict):
        for key, item in value.items():
            if key == "vin" and isinstance(item, str):
                found.add(item)
            found |= _vins_in(item)
    elif isinstance(value, list):
        for item in value:
            found |= _vins_in(item)
    return found


@pytest.mark.timeout(90)  # a stream the walk wrongly opens would otherwise never end
def test_owner_walk(env: Env) -> None:
    olga = seed_owner(env)
    before = snapshot(env)
    marks = foreign_marks(env)
    bertram = Refs.of(env.beta)
    ghost = replace(GHOST, brand="beta")  # things that do not exist, in Olga's own brand
    failures: list[str] = []
    walked = refused = 0
    for ep in endpoints(env.client.app):  # type: ignore[arg-type]
        if unfillable(ep):
            continue  # test_tenancy.test_walk_covers_every_route reports it
        for call in calls(ep):
            walked += 1
            answers: list[Any] = []
            for refs in (bertram, ghost):
                url, params, body = call.build(refs)
                r = fetch(env, ep.method, url, params=params, json=body, headers=olga.h)
                answers.append((r, _normalised(r.text, refs, f"{url} {params} {body}")))
            (r, norm), (r_ghost, norm_ghost) = answers
            where = f"{ep} [{call.label}]"
            shown = [m for m in marks if m in r.text]
            if shown:
                failures.append(f"{where}: response reveals {shown}: {r.text[:300]}")
            url, params, body = call.build(bertram)
            # Naming Bertram's car, command, rule...: a path parameter, a body, or a stream's
            # vin= (a list's vin= is a filter: empty is a fine answer). brand= is Olga's own.
            targeted = bool(url != ep.path or body is not None or "vin" in params)
            if r.status_code >= 500:
                failures.append(f"{where}: status {r.status_code}: {r.text[:300]}")
            elif targeted:
                if r.status_code not in (403, 404, 422):
                    failures.append(
                        f"{where}: status {r.status_code}, want 403/404: {r.text[:300]}"
                    )
                elif r.content_type != PROBLEM_JSON:
                    failures.append(f"{where}: refusal is not problem+json: {r.content_type}")
                if r.status_code != r_ghost.status_code or norm != norm_ghost:
                    failures.append(
                        f"{where}: Bertram's thing answers differently from a non-existent one: "
                        f"{r.status_code} {r.text[:200]} vs {r_ghost.status_code} "
                        f"{r_ghost.text[:200]}"
                    )
            if r.status_code in (403, 404):
                refused += 1
            elif "json" in r.content_type and r.text:
                foreign = _vins_in(json.loads(r.text)) - {olga.vin}
                if foreign:
                    failures.append(f"{where}: lists vehicles not Olga's: {sorted(foreign)}")
    assert walked >= 60 and refused >= 40, (walked, refused)
    assert not failures, "\n".join(failures)
    assert snapshot(env) == before, "the walk changed Bertram's or beta's state"


def test_owner_routes_exist(env: Env) -> None:
    """Every route opened to owners exists (a stale entry would hide a renamed route)."""
    found = {(e.method, e.path) for e in endpoints(env.client.app)}  # type: ignore[arg-type]
    assert found >= OWNER_ROUTES, sorted(OWNER_ROUTES - found)


LISTS = ["/v1/vehicles", "/v1/fleet", "/v1/commands", "/v1/alerts"]


@pytest.mark.parametrize("url", LISTS)
def test_owner_lists_show_only_own_vehicles(env: Env, url: str) -> None:
    olga = seed_owner(env)
    group = env.client.get(url, params={"brand": "beta"}, headers=env.g).json()["items"]
    assert {env.beta.vin, olga.vin} <= _vins_in(group), group  # both exist: not vacuous
    r = env.client.get(url, headers=olga.h)
    assert r.status_code == 200, r.text
    assert _vins_in(r.json()["items"]) == {olga.vin}
    same = env.client.get(url, params={"brand": "beta"}, headers=olga.h)
    assert _vins_in(same.json()["items"]) == {olga.vin}


def test_owner_fleet_health_counts_only_own_vehicles(env: Env) -> None:
    olga = seed_owner(env)
    brand = env.client.get("/v1/fleet/health", params={"brand": "beta"}, headers=env.g).json()
    assert brand["vehicles_with_codes"] == 2
    mine = env.client.get("/v1/fleet/health", headers=olga.h).json()
    assert mine["vehicles_with_codes"] == 1
    assert [c["code"] for c in mine["by_code"]] == ["P0420"]
    assert env.beta.vin not in json.dumps(mine)


@pytest.mark.parametrize(
    "url",
    [
        "/v1/dead-letters",
        "/v1/dead-letters/summary",
        "/v1/tokens",
        "/v1/webhooks",
        "/v1/webhook-deliveries",
        "/v1/alert-rules",
        "/v1/gateways",
        "/v1/owners",
        "/v1/audit",
        "/v1/fleet/pulse",
    ],
)
def test_brand_level_routes_refuse_owners(env: Env, url: str) -> None:
    olga = seed_owner(env)
    r = env.client.get(url, headers=olga.h)
    assert r.status_code == 403, r.text
    assert r.headers["content-type"] == PROBLEM_JSON
    assert "owner" in r.json()["detail"]
    # A viewer of the same brand (not an owner) still gets these (or a role refusal).
    assert env.client.get(url, headers=env.beta.h("admin")).status_code == 200


def test_detaching_a_vehicle_hides_it_at_once(env: Env) -> None:
    olga = seed_owner(env)
    assert _vins_in(env.client.get("/v1/vehicles", headers=olga.h).json()) == {olga.vin}
    r = env.client.delete(f"/v1/vehicles/{olga.vin}/owners/{olga.id}", headers=env.g)
    assert r.status_code == 200, r.text
    assert env.client.get("/v1/vehicles", headers=olga.h).json()["items"] == []
    assert env.client.get("/v1/fleet", headers=olga.h).json()["items"] == []
    assert env.client.get(f"/v1/vehicles/{olga.vin}/twin", headers=olga.h).status_code == 404


@pytest.mark.timeout(30)
def test_owner_stream_carries_only_own_vehicle(env: Env) -> None:
    """Over HTTP, fed by real ingest: Olga's stream has her car's changes, not Bertram's,
    though both are in her brand."""
    olga = Owner(env)
    with env.client.stream("GET", "/v1/stream", headers=olga.h) as r:
        assert r.status_code == 200
        lines = r.iter_lines()
        assert _sse_data(lines, 1) == [("ready", {})]
        env.send(env.beta.vin, NOW - 5_000, {SPEED: 11.0})
        env.ingest(state(env.beta.vin, True, NOW - 4_500))
        env.send(olga.vin, NOW - 4_000, {SPEED: 22.0})
        env.send(env.beta.vin, NOW - 3_000, {SOC: 250.0})  # a dead letter of Bertram's car
        env.send(olga.vin, NOW - 1_000, {SPEED: 33.0})
        got = _sse_data(lines, 2)
    assert [(kind, data["vin"]) for kind, data in got] == [("twin", olga.vin), ("twin", olga.vin)]
    assert got[1][1]["signals"] == {SPEED: {"value": 33.0, "ts": NOW - 1_000}}
    assert env.beta.vin not in json.dumps(got)
    # Naming Bertram's car is refused up front, as for a VIN that does not exist.
    foreign = env.client.get("/v1/stream", params={"vin": env.beta.vin}, headers=olga.h)
    ghost = env.client.get("/v1/stream", params={"vin": eu_vin(999_999)}, headers=olga.h)
    assert foreign.status_code == ghost.status_code == 404
    assert foreign.json()["detail"] == ghost.json()["detail"]


def _alerts(env: Env, headers: dict[str, str], **params: Any) -> list[dict[str, Any]]:
    r = env.client.get("/v1/alerts", params=params, headers=headers)
    assert r.status_code == 200, r.text
    return list(r.json()["items"])


def test_owner_sees_and_acknowledges_only_own_vehicle_alerts(env: Env) -> None:
    """Both cars of brand beta have an open alert of the same rule; Olga sees, reads and
    acknowledges hers only, and Bertram's is refused exactly as one that does not exist."""
    olga = seed_owner(env)
    brand = _alerts(env, env.g, brand="beta", state="open")
    by_vin = {a["vin"]: a for a in brand}
    assert set(by_vin) == {olga.vin, env.beta.vin}  # both exist: not vacuous
    mine, his = by_vin[olga.vin], by_vin[env.beta.vin]
    assert mine["rule_id"] == his["rule_id"] == env.beta.rule_id

    for params in ({}, {"state": "open"}, {"rule_id": env.beta.rule_id}, {"vin": olga.vin}):
        assert [a["id"] for a in _alerts(env, olga.h, **params)] == [mine["id"]], params
    assert env.client.get(f"/v1/alerts/{mine['id']}", headers=olga.h).json()["vin"] == olga.vin
    ghost = 999_999
    for method, suffix in (("GET", ""), ("POST", "/ack")):
        foreign = env.client.request(method, f"/v1/alerts/{his['id']}{suffix}", headers=olga.h)
        missing = env.client.request(method, f"/v1/alerts/{ghost}{suffix}", headers=olga.h)
        assert foreign.status_code == missing.status_code == 404, foreign.text
        assert foreign.headers["content-type"] == PROBLEM_JSON
        assert foreign.json()["detail"].replace(str(his["id"]), "N") == missing.json()[
            "detail"
        ].replace(str(ghost), "N")
        assert env.beta.vin not in foreign.text
    listed = env.client.get("/v1/alerts", params={"vin": env.beta.vin}, headers=olga.h)
    assert listed.status_code == 404 and env.beta.vin not in listed.text

    acked = env.client.post(f"/v1/alerts/{mine['id']}/ack", headers=olga.h)
    assert acked.status_code == 200, acked.text
    assert (acked.json()["state"], acked.json()["acked_by"]) == ("acknowledged", "olga-app")
    states = {a["vin"]: a["state"] for a in _alerts(env, env.g, brand="beta")}
    assert states == {olga.vin: "acknowledged", env.beta.vin: "open"}  # his is untouched
    # A viewer of the brand that is not an owner still may not acknowledge (a role matter).
    r = env.client.post(f"/v1/alerts/{his['id']}/ack", headers=env.beta.h("viewer"))
    assert r.status_code == 403


def test_owner_is_refused_alert_rules_with_a_clear_problem(env: Env) -> None:
    olga = seed_owner(env)
    rule = {"name": "mine", "signal": {"path": SPEED, "op": ">", "threshold": 1}}
    for method, url, body in (
        ("GET", "/v1/alert-rules", None),
        ("POST", "/v1/alert-rules", rule),
        ("GET", f"/v1/alert-rules/{env.beta.rule_id}", None),
        ("DELETE", f"/v1/alert-rules/{env.beta.rule_id}", None),
    ):
        r = env.client.request(method, url, json=body, headers=olga.h)
        assert r.status_code == 403, (method, url, r.text)
        assert r.headers["content-type"] == PROBLEM_JSON
        assert "alert rules are set by the brand's operators" in r.json()["detail"]
    assert [r["id"] for r in env.client.get("/v1/alert-rules", headers=env.g).json()["items"]]


def test_owner_alert_rules_are_refused_by_the_service_too(env: Env) -> None:
    """The rule holds below the API (CLI, other entry points): the service refuses owners."""
    from autocloud.domain.errors import Forbidden

    olga = seed_owner(env)
    service = env.platform.alerts
    assert service is not None
    principal = env.platform.registry.authenticate(olga.h["Authorization"].split()[1])
    assert principal.owner_id == olga.id
    with pytest.raises(Forbidden, match="alert rules"):
        service.rules(principal, brand=None, cursor=None, limit=10)
    with pytest.raises(Forbidden, match="alert rules"):
        service.rule(principal, env.beta.rule_id)
