"""The operator API end to end: provisioning, access, twins, fleet, history, dead letters,
metrics and the published schema, on the embedded (SQLite) platform; a smoke subset also
runs on PostgreSQL (`test_smoke`).

Telemetry enters through the real ingest pipeline (`Env.send` / `Env.ingest`).
"""

import csv
import io
import json
import re
from pathlib import Path
from typing import Any

import pytest

from autocloud.bootstrap import SYSTEM
from autocloud.domain.access import Role
from tests.api.conftest import (
    LOCKED,
    NOW,
    SOC,
    SPEED,
    Env,
    auth,
    build_env,
    eu_vin,
    na_vin,
    raw,
    state,
    telemetry,
)

PROBLEM_JSON = "application/problem+json"


def assert_problem(r: Any, status: int, *detail_words: str) -> dict[str, Any]:
    """An RFC 9457 problem of `status` whose detail mentions each of `detail_words`."""
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == PROBLEM_JSON, r.headers
    body: dict[str, Any] = r.json()
    assert {"type", "title", "status", "detail"} <= body.keys(), body
    assert body["status"] == status
    assert body["type"].startswith("https://") and body["title"] and body["detail"]
    for word in detail_words:
        assert word.lower() in body["detail"].lower(), (word, body["detail"])
    return body


# --- brands -----------------------------------------------------------------------------------


def test_brands_are_created_by_the_group_admin_only(env: Env) -> None:
    c = env.client
    made = c.post("/v1/brands", json={"id": "gamma", "name": "Gamma Cars"}, headers=env.g)
    assert made.status_code == 201, made.text
    assert made.json() == {"id": "gamma", "name": "Gamma Cars", "created_ms": NOW}
    ids = [b["id"] for b in c.get("/v1/brands", headers=env.g).json()["items"]]
    assert ids == ["alpha", "beta", "gamma"]
    # A brand admin is not a group admin; lesser roles are refused before that.
    assert c.post(
        "/v1/brands", json={"id": "delta", "name": "D"}, headers=env.alpha.h("admin")
    ).status_code in (403, 404)
    assert_problem(
        c.post("/v1/brands", json={"id": "delta", "name": "D"}, headers=env.alpha.h("viewer")), 403
    )
    assert_problem(
        c.post("/v1/brands", json={"id": "gamma", "name": "G"}, headers=env.g), 409, "gamma"
    )
    assert_problem(
        c.post("/v1/brands", json={"id": "Not A Slug", "name": "X"}, headers=env.g),
        422,
        "lower-case",
    )
    assert_problem(c.post("/v1/brands", json={"id": "x"}, headers=env.g), 422, "name")
    # A brand admin sees its own brand only.
    assert c.get("/v1/brands", headers=env.alpha.h("viewer")).json()["items"] == [
        {"id": "alpha", "name": "Alpha Motors", "created_ms": NOW}
    ]


# --- vehicles ---------------------------------------------------------------------------------


def test_provisioning_returns_the_credential_once(env: Env) -> None:
    c, vin = env.client, na_vin(42)
    r = c.post(
        "/v1/vehicles",
        json={"vin": f"  {vin.lower()} ", "brand": "alpha", "model": "Arrow GT"},
        headers=env.alpha.h("operator"),
    )
    assert r.status_code == 201, r.text
    body = r.json()
    vehicle, credential = body["vehicle"], body["credential"]
    assert vehicle["vin"] == vin  # normalised
    assert (vehicle["brand"], vehicle["model"], vehicle["owners"]) == ("alpha", "Arrow GT", [])
    assert (vehicle["manufacturer"], vehicle["model_year"]) == ("Honda", 2003)
    password = credential["password"]
    assert credential["username"] == credential["client_id"] == vin
    assert credential["topic_root"] == f"vehicles/{vin}/"
    assert credential["mqtt_url"].startswith("mqtt://")
    assert len(password) >= 32
    assert env.platform.registry.verify_vehicle(vin, password)
    # Never again: not in the vehicle, the list, the twin, the fleet.
    for url in (f"/v1/vehicles/{vin}", "/v1/vehicles", f"/v1/vehicles/{vin}/twin", "/v1/fleet"):
        got = c.get(url, headers=env.g)
        assert got.status_code == 200, got.text
        assert password not in got.text and "credential" not in got.text, url
    assert c.get(f"/v1/vehicles/{vin.lower()}", headers=env.alpha.h("viewer")).json() == vehicle


@pytest.mark.parametrize(
    ("vin", "words"),
    [
        ("1HGCM8263A00001", ["17 characters", "got 15"]),
        ("1HGCM82O33A000001", ["O"]),
        (na_vin(1)[:8] + "X" + na_vin(1)[9:], ["check digit", "position 9"]),
        ("", ["17 characters"]),
    ],
)
def test_invalid_vin_is_422_with_a_helpful_detail(env: Env, vin: str, words: list[str]) -> None:
    r = env.client.post("/v1/vehicles", json={"vin": vin, "brand": "alpha"}, headers=env.g)
    assert_problem(r, 422, *words)
    assert env.client.get("/v1/vehicles", headers=env.g).json()["items"][-1]["vin"] != vin


def test_duplicate_vehicle_is_409_and_unknown_brand_404(env: Env) -> None:
    r = env.client.post(
        "/v1/vehicles", json={"vin": env.alpha.vin, "brand": "alpha"}, headers=env.g
    )
    assert_problem(r, 409, "registered already")
    r = env.client.post("/v1/vehicles", json={"vin": na_vin(9), "brand": "nosuch"}, headers=env.g)
    assert_problem(r, 404, "nosuch")


def test_rotating_the_credential_replaces_it(env: Env) -> None:
    c, vin, old = env.client, env.alpha.vin, env.alpha.secret
    assert_problem(c.post(f"/v1/vehicles/{vin}/credential", headers=env.alpha.h("viewer")), 403)
    r = c.post(f"/v1/vehicles/{vin}/credential", headers=env.alpha.h("operator"))
    assert r.status_code == 200, r.text
    new = r.json()["credential"]["password"]
    assert new != old
    assert env.platform.registry.verify_vehicle(vin, new)
    assert not env.platform.registry.verify_vehicle(vin, old)
    assert r.json()["vehicle"]["vin"] == vin


def test_deleting_a_vehicle_stops_its_ingest(env: Env) -> None:
    c, vin = env.client, env.alpha.vin
    env.send(vin, NOW - 1_000, {SPEED: 10.0})  # ingest has the vehicle in its cache now
    assert_problem(c.delete(f"/v1/vehicles/{vin}", headers=env.alpha.h("operator")), 403)
    assert c.delete(f"/v1/vehicles/{vin.lower()}", headers=env.alpha.h("admin")).status_code == 204
    assert_problem(c.get(f"/v1/vehicles/{vin}", headers=env.g), 404)
    assert not env.platform.registry.verify_vehicle(vin, env.alpha.secret)
    batch = env.send(vin, NOW - 500, {SPEED: 11.0})
    assert [d.reason for d in batch.out.dead_letters] == ["unknown_vehicle"]


def test_list_vehicles_pages_with_a_cursor(env: Env) -> None:
    c = env.client
    for serial in range(10, 15):
        r = c.post(
            "/v1/vehicles",
            json={"vin": eu_vin(serial), "brand": "beta", "model": "Bison"},
            headers=env.g,
        )
        assert r.status_code == 201
    seen, cursor = [], None
    while True:
        params = {"brand": "beta", "limit": 2, **({"cursor": cursor} if cursor else {})}
        page = c.get("/v1/vehicles", params=params, headers=env.g).json()
        seen += [v["vin"] for v in page["items"]]
        if not (cursor := page["next"]):
            break
    assert seen == [env.beta.vin, *(eu_vin(s) for s in range(10, 15))]
    assert_problem(c.get("/v1/vehicles", params={"cursor": "abc"}, headers=env.g), 422, "cursor")
    assert_problem(c.get("/v1/vehicles", params={"limit": 0}, headers=env.g), 422, "limit")


# --- owners -----------------------------------------------------------------------------------


def test_owners_create_attach_detach(env: Env) -> None:
    c, vin, h = env.client, env.alpha.vin, env.alpha.h("operator")
    r = c.post(
        "/v1/owners",
        json={"brand": "alpha", "name": " Ada ", "email": "ada@alpha.example"},
        headers=h,
    )
    assert r.status_code == 201, r.text
    ada = r.json()
    assert (ada["brand"], ada["name"], ada["email"], ada["created_ms"]) == (
        "alpha",
        "Ada",
        "ada@alpha.example",
        NOW,
    )
    assert_problem(
        c.post("/v1/owners", json={"brand": "alpha", "name": "X", "email": "nope"}, headers=h),
        422,
        "e-mail",
    )
    assert_problem(
        c.post(
            "/v1/owners",
            json={"brand": "alpha", "name": "X", "email": "ada@alpha.example"},
            headers=h,
        ),
        409,
    )
    viewer = env.alpha.h("viewer")
    assert_problem(
        c.post(
            "/v1/owners",
            json={"brand": "alpha", "name": "V", "email": "v@a.example"},
            headers=viewer,
        ),
        403,
    )

    attached = c.post(f"/v1/vehicles/{vin}/owners", json={"owner_id": ada["id"]}, headers=h)
    assert attached.status_code == 200, attached.text
    assert attached.json()["owners"] == [env.alpha.owner_id, ada["id"]]
    again = c.post(f"/v1/vehicles/{vin}/owners", json={"owner_id": ada["id"]}, headers=h)
    assert again.json()["owners"] == [env.alpha.owner_id, ada["id"]]  # idempotent
    assert c.get(f"/v1/vehicles/{vin}", headers=viewer).json()["owners"] == [
        env.alpha.owner_id,
        ada["id"],
    ]
    detached = c.delete(f"/v1/vehicles/{vin}/owners/{env.alpha.owner_id}", headers=h)
    assert detached.status_code == 200, detached.text
    assert detached.json()["owners"] == [ada["id"]]
    # Owners belong to one brand: even the group admin cannot cross them.
    r = c.post(f"/v1/vehicles/{vin}/owners", json={"owner_id": env.beta.owner_id}, headers=env.g)
    assert_problem(r, 422, "beta")
    assert_problem(c.post(f"/v1/vehicles/{vin}/owners", json={"owner_id": 10**6}, headers=h), 404)
    owners = c.get("/v1/owners", headers=viewer).json()["items"]
    assert [o["email"] for o in owners] == ["alice@alpha.example", "ada@alpha.example"]
    first = c.get("/v1/owners", params={"limit": 1}, headers=viewer).json()
    rest = c.get("/v1/owners", params={"limit": 1, "cursor": first["next"]}, headers=viewer).json()
    assert [o["id"] for o in first["items"] + rest["items"]] == [o["id"] for o in owners]


# --- tokens and authentication ----------------------------------------------------------------


def test_tokens_create_list_revoke(env: Env) -> None:
    c = env.client
    r = c.post(
        "/v1/tokens", json={"name": "dash", "role": "viewer", "brand": "alpha"}, headers=env.g
    )
    assert r.status_code == 201, r.text
    made = r.json()
    token = made["token"]
    assert token.startswith("ac_")
    assert (made["name"], made["role"], made["brand"], made["revoked_ms"]) == (
        "dash",
        "viewer",
        "alpha",
        None,
    )
    assert c.get("/v1/vehicles", headers=auth(token)).status_code == 200
    listed = c.get("/v1/tokens", headers=env.g)
    assert token not in listed.text  # shown once, at creation
    assert "dash" in [t["name"] for t in listed.json()["items"]]
    assert c.delete(f"/v1/tokens/{made['id']}", headers=env.alpha.h("admin")).status_code == 204
    body = assert_problem(c.get("/v1/vehicles", headers=auth(token)), 401, "revoked")
    assert c.get("/v1/vehicles", headers=auth(token)).headers["www-authenticate"] == "Bearer"
    assert body["type"].endswith("/unauthorized")
    dash = next(
        t for t in c.get("/v1/tokens", headers=env.g).json()["items"] if t["id"] == made["id"]
    )
    assert dash["revoked_ms"] == NOW
    # Only admins handle tokens; roles are validated.
    assert_problem(c.get("/v1/tokens", headers=env.alpha.h("operator")), 403, "admin")
    assert_problem(
        c.post("/v1/tokens", json={"name": "x", "role": "viewer"}, headers=env.alpha.h("operator")),
        403,
    )
    assert_problem(
        c.post("/v1/tokens", json={"name": "x", "role": "root"}, headers=env.g),
        422,
        "viewer, operator, admin",
    )
    assert_problem(c.delete("/v1/tokens/999999", headers=env.g), 404)


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer ac_not-a-token"},
        {"Authorization": "Basic YWRtaW46YWRtaW4="},
        {"Authorization": "Bearer"},
    ],
    ids=["missing", "unknown", "basic", "empty"],
)
def test_requests_without_a_valid_token_are_401(env: Env, headers: dict[str, str]) -> None:
    r = env.client.get("/v1/vehicles", headers=headers)
    assert_problem(r, 401)
    assert r.headers["www-authenticate"] == "Bearer"


def test_access_token_query_is_only_for_the_stream(env: Env) -> None:
    r = env.client.get("/v1/vehicles", params={"access_token": env.alpha.tokens["admin"]})
    assert_problem(r, 401)


MUTATIONS = [
    ("POST", "/v1/brands", {"id": "zeta", "name": "Z"}),
    ("POST", "/v1/vehicles", {"vin": na_vin(50), "brand": "alpha"}),
    ("POST", "/v1/owners", {"brand": "alpha", "name": "V", "email": "v@alpha.example"}),
    ("POST", "/v1/tokens", {"name": "t", "role": "viewer"}),
    ("POST", "/v1/vehicles/{vin}/credential", None),
    ("POST", "/v1/vehicles/{vin}/owners", {"owner_id": 1}),
    ("DELETE", "/v1/vehicles/{vin}/owners/1", None),
    ("PATCH", "/v1/vehicles/{vin}/twin/desired", {LOCKED: True}),
    ("DELETE", "/v1/vehicles/{vin}", None),
]


@pytest.mark.parametrize(
    ("method", "url", "body"), MUTATIONS, ids=[f"{m} {u}" for m, u, _ in MUTATIONS]
)
def test_viewer_cannot_change_anything(env: Env, method: str, url: str, body: Any) -> None:
    r = env.client.request(
        method, url.format(vin=env.alpha.vin), json=body, headers=env.alpha.h("viewer")
    )
    assert_problem(r, 403, "viewer")


# --- twin -------------------------------------------------------------------------------------


def test_twin_after_ingest(env: Env) -> None:
    c, vin = env.client, env.alpha.vin
    empty = c.get(f"/v1/vehicles/{vin}/twin", headers=env.alpha.h("viewer")).json()
    assert (empty["reported"], empty["desired"], empty["pending"], empty["online"]) == (
        {},
        {},
        [],
        False,
    )
    env.send(vin, NOW - 20_000, {SPEED: 50.5, SOC: 80.0})
    env.send(vin, NOW - 10_000, {SPEED: 61.0, LOCKED: True})
    env.send(vin, NOW - 30_000, {SPEED: 1.0})  # late and older: history only, not the twin
    env.ingest(state(vin, True, NOW - 25_000))
    twin = c.get(f"/v1/vehicles/{vin}/twin", headers=env.alpha.h("viewer")).json()
    assert twin["reported"] == {
        SPEED: {"value": 61.0, "ts": NOW - 10_000, "received_ms": NOW},
        SOC: {"value": 80.0, "ts": NOW - 20_000, "received_ms": NOW},
        LOCKED: {"value": True, "ts": NOW - 10_000, "received_ms": NOW},
    }
    assert (twin["online"], twin["online_since_ms"], twin["sid"]) == (
        True,
        NOW,
        "s1",
    )  # the platform clock
    assert twin["vehicle"]["vin"] == vin
    env.ingest(state(vin, False, NOW - 5_000))  # a last will: the receive time counts
    offline = c.get(f"/v1/vehicles/{vin}/twin", headers=env.g).json()
    assert (offline["online"], offline["online_since_ms"]) == (False, NOW)


def test_desired_is_pending_until_reported_matches(env: Env) -> None:
    c, vin, url = env.client, env.alpha.vin, f"/v1/vehicles/{env.alpha.vin}/twin/desired"
    r = c.patch(
        url,
        json={LOCKED: True, "Vehicle.Powertrain.TractionBattery.Charging.ChargeLimit": 80},
        headers=env.alpha.h("operator"),
    )
    assert r.status_code == 200, r.text
    twin = r.json()
    assert twin["desired"][LOCKED] == {"value": True, "set_ms": NOW, "set_by": "alpha-operator"}
    assert sorted(twin["pending"]) == sorted(
        [LOCKED, "Vehicle.Powertrain.TractionBattery.Charging.ChargeLimit"]
    )
    env.send(vin, NOW - 3_000, {LOCKED: False})
    assert LOCKED in c.get(f"/v1/vehicles/{vin}/twin", headers=env.g).json()["pending"]
    env.send(
        vin,
        NOW - 2_000,
        {LOCKED: True, "Vehicle.Powertrain.TractionBattery.Charging.ChargeLimit": 80},
    )
    done = c.get(f"/v1/vehicles/{vin}/twin", headers=env.g).json()
    assert done["pending"] == []
    assert done["desired"][LOCKED]["value"] is True
    # Validated against the catalog, all or nothing.
    h = env.alpha.h("operator")
    assert_problem(c.patch(url, json={SOC: 150}, headers=h), 422, "150")
    assert_problem(c.patch(url, json={"Vehicle.Nope": 1}, headers=h), 422, "Vehicle.Nope")
    assert_problem(c.patch(url, json={SPEED: 10, LOCKED: "yes"}, headers=h), 422)
    assert SPEED not in c.get(f"/v1/vehicles/{vin}/twin", headers=env.g).json()["desired"]
    assert_problem(c.patch(url, json=[LOCKED], headers=h), 422)


# --- fleet ------------------------------------------------------------------------------------


def test_fleet_filters(env: Env) -> None:
    c, low, high = env.client, env.alpha.vin, na_vin(2)
    r = c.post(
        "/v1/vehicles", json={"vin": high, "brand": "alpha", "model": "Comet"}, headers=env.g
    )
    assert r.status_code == 201
    env.send(low, NOW - 5_000, {SOC: 15.0, SPEED: 0.0, LOCKED: True})
    env.send(high, NOW - 5_000, {SOC: 80.0})
    env.ingest(state(low, True, NOW - 6_000))
    env.send(env.beta.vin, NOW - 5_000, {SOC: 5.0})

    def vins(**params: Any) -> list[str]:
        r = c.get("/v1/fleet", params=params, headers=env.alpha.h("viewer"))
        assert r.status_code == 200, r.text
        return [e["vin"] for e in r.json()["items"]]

    assert vins() == [low, high]
    assert vins(where=f"{SOC}<20") == [low]
    assert vins(where=f"{SOC} >= 15") == [low, high]
    assert vins(where=f"{SOC}>90") == []
    assert vins(where=[f"{SOC}<90", f"{SPEED}=0"]) == [low]
    assert vins(online="true") == [low]
    assert vins(online="false") == [high]
    assert vins(online="false", where=f"{SOC}<20") == []
    assert vins(model="Comet") == [high]
    assert vins(where=f"{LOCKED}=true") == [low]
    assert vins(where=f"{LOCKED}!=true") == []  # a signal never reported matches no condition
    entry = c.get("/v1/fleet", params={"where": f"{SOC}<20"}, headers=env.g).json()["items"]
    assert [e["vin"] for e in entry] == [low, env.beta.vin]  # the group sees both brands
    assert entry[0] == {
        "vin": low,
        "brand": "alpha",
        "model": "Arrow",
        "online": True,
        "signals": {SOC: 15.0, SPEED: 0.0},
    }
    page = c.get("/v1/fleet", params={"limit": 1}, headers=env.alpha.h("viewer")).json()
    assert [e["vin"] for e in page["items"]] == [low] and page["next"]
    assert_problem(
        c.get("/v1/fleet", params={"where": "Vehicle.Nope<3"}, headers=env.g), 422, "Vehicle.Nope"
    )
    assert_problem(
        c.get("/v1/fleet", params={"where": f"{SOC}~3"}, headers=env.g), 422, "Vehicle.Speed>100"
    )
    assert_problem(c.get("/v1/fleet", params={"where": f"{SOC}<low"}, headers=env.g), 422, "number")


# --- history ----------------------------------------------------------------------------------

T0 = NOW - 3_600_000  # an hour ago, on a minute boundary


def _by_time(row: dict[str, Any]) -> tuple[int, str]:
    return row.get("ts", row.get("start", 0)), row["path"]


def _history(env: Env, **params: Any) -> Any:
    params = {"signals": f"{SPEED},{SOC}", "since": T0, "until": NOW, **params}
    return env.client.get(
        f"/v1/vehicles/{env.alpha.vin}/history", params=params, headers=env.alpha.h("viewer")
    )


def test_history_raw_json_and_csv(env: Env) -> None:
    env.send(env.alpha.vin, T0 + 1_000, {SPEED: 10.0, SOC: 90.0, LOCKED: True})
    env.send(env.alpha.vin, T0 + 2_000, {SPEED: 20.5})
    env.send(env.alpha.vin, T0 - 1, {SPEED: 99.0})  # before the range
    r = _history(env)
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["vin"], body["since"], body["until"], body["bucket_ms"], body["next"]) == (
        env.alpha.vin,
        T0,
        NOW,
        None,
        None,
    )
    # Ordered by time; values of one instant come in a fixed (signal id) order.
    assert sorted(body["points"], key=_by_time) == [
        {"path": SOC, "ts": T0 + 1_000, "value": 90.0},
        {"path": SPEED, "ts": T0 + 1_000, "value": 10.0},
        {"path": SPEED, "ts": T0 + 2_000, "value": 20.5},
    ]
    assert [p["ts"] for p in body["points"]] == [T0 + 1_000, T0 + 1_000, T0 + 2_000]
    assert _history(env, signals=[SPEED, SOC]).json()["points"] == body["points"]  # repeated form
    lower = env.client.get(
        f"/v1/vehicles/{env.alpha.vin.lower()}/history",
        params={"signals": SPEED, "since": T0, "until": NOW},
        headers=env.g,
    ).json()
    assert lower["vin"] == env.alpha.vin and len(lower["points"]) == 2
    assert _history(env, since="1h").json()["points"] == body["points"]  # relative to the clock
    r = _history(env, format="csv")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/csv")
    assert list(csv.reader(io.StringIO(r.text))) == [
        ["path", "ts", "value"],
        *([p["path"], str(p["ts"]), str(p["value"])] for p in body["points"]),
    ]
    assert_problem(_history(env, signals="Vehicle.Nope"), 422, "Vehicle.Nope")
    assert_problem(_history(env, since=NOW, until=T0), 422, "after")
    assert_problem(_history(env, since="yesterday"), 422, "not a time")
    assert_problem(
        env.client.get(f"/v1/vehicles/{env.alpha.vin}/history", headers=env.g), 422, "signals"
    )


def test_history_buckets(env: Env) -> None:
    vin = env.alpha.vin
    for offset, speed in ((0, 10.0), (10_000, 30.0), (50_000, 20.0), (70_000, 5.0), (110_000, 7.0)):
        env.send(vin, T0 + offset, {SPEED: speed})
    env.send(vin, T0 + 20_000, {SOC: 50.0})
    r = _history(env, bucket="1m", until=T0 + 120_000)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["bucket_ms"] == 60_000 and body["points"] is None
    assert sorted(body["buckets"], key=lambda b: (b["path"], b["start"])) == [
        {"path": SOC, "start": T0, "count": 1, "min": 50.0, "avg": 50.0, "max": 50.0, "last": 50.0},
        {
            "path": SPEED,
            "start": T0,
            "count": 3,
            "min": 10.0,
            "avg": 20.0,
            "max": 30.0,
            "last": 20.0,
        },
        {
            "path": SPEED,
            "start": T0 + 60_000,
            "count": 2,
            "min": 5.0,
            "avg": 6.0,
            "max": 7.0,
            "last": 7.0,
        },
    ]
    rows = list(
        csv.DictReader(
            io.StringIO(_history(env, bucket="1m", until=T0 + 120_000, format="csv").text)
        )
    )
    assert [(x["path"], int(x["start"]), int(x["count"]), float(x["last"])) for x in rows] == [
        (b["path"], b["start"], b["count"], b["last"]) for b in body["buckets"]
    ]
    assert_problem(_history(env, bucket="0m"), 422, "positive")
    assert_problem(_history(env, bucket="soon"), 422, "duration")
    assert_problem(_history(env, bucket="1ms", since="30d"), 422, "too many")


@pytest.mark.parametrize("limit", [1, 5, 7])
def test_history_pages_until_exhausted(env: Env, limit: int) -> None:
    """25 points, three per instant mostly (from two messages): page boundaries fall inside
    and between instants; nothing is lost or repeated."""
    for i in range(9):
        ts = T0 + 1_000 * i
        env.send(env.alpha.vin, ts, {SPEED: float(i), SOC: 50.0 + i})
        if i != 4:
            env.send(env.alpha.vin, ts, {LOCKED: bool(i % 2)})
    everything = _history(env, signals=f"{SPEED},{SOC},{LOCKED}").json()["points"]
    assert len(everything) == 26
    assert everything == sorted(everything, key=lambda p: p["ts"])
    pages, cursor = [], None
    while True:
        extra = {"cursor": cursor} if cursor else {}
        body = _history(env, signals=f"{SPEED},{SOC},{LOCKED}", limit=limit, **extra).json()
        assert len(body["points"]) <= limit
        pages.append(body["points"])
        if not (cursor := body["next"]):
            break
        assert len(pages) <= 30, "the cursor does not advance"
    got = [p for page in pages for p in page]
    assert got == everything
    assert len({(p["path"], p["ts"]) for p in got}) == len(got)


def test_history_csv_pages_by_link_header(env: Env) -> None:
    for i in range(5):
        env.send(env.alpha.vin, T0 + 1_000 * i, {SPEED: float(i)})
    rows: list[list[str]] = []
    r = _history(env, format="csv", limit=2, signals=SPEED)
    while True:
        assert r.status_code == 200, r.text
        rows += list(csv.reader(io.StringIO(r.text)))[1:]
        link = r.headers.get("link")
        if not link:
            break
        match = re.fullmatch(r'<(/v1/vehicles/[^>]+)>; rel="next"', link)  # relative: proxy-safe
        assert match, link
        r = env.client.get(match.group(1), headers=env.alpha.h("viewer"))  # followed as given
    assert [row[2] for row in rows] == ["0.0", "1.0", "2.0", "3.0", "4.0"]


# --- dead letters -----------------------------------------------------------------------------


def test_dead_letters_keep_reason_and_raw_payload(env: Env) -> None:
    vin = env.alpha.vin
    bad = {
        "malformed": b'{"v":1,"sid":"s1","seq":',
        "unknown_signal": json.dumps(
            {
                "v": 1,
                "sid": "s1",
                "seq": 1,
                "ts": NOW - 1_000,
                "signals": {SPEED: 12.5, "Vehicle.Warp.Factor": 9},
            }
        ).encode(),
        "out_of_range": json.dumps(
            {"v": 1, "sid": "s1", "seq": 2, "ts": NOW - 900, "signals": {SOC: 180.0}}
        ).encode(),
        "vin_mismatch": json.dumps(
            {
                "v": 1,
                "sid": "s1",
                "seq": 3,
                "ts": NOW - 800,
                "vin": na_vin(77),
                "signals": {SPEED: 1.0},
            }
        ).encode(),
        "future_timestamp": json.dumps(
            {"v": 1, "sid": "s1", "seq": 4, "ts": NOW + 3_600_000, "signals": {SPEED: 2.0}}
        ).encode(),
    }
    for reason, payload in bad.items():  # one batch each: newest first is then this order
        batch = env.ingest(raw(vin, payload))
        assert [d.reason for d in batch.out.dead_letters] == [reason]
    c = env.client
    listed = c.get("/v1/dead-letters", headers=env.g).json()["items"]
    assert [d["reason"] for d in listed] == list(reversed(bad))  # newest first
    for d in listed:
        assert d["payload"] == bad[d["reason"]].decode()
        assert (d["payload_encoding"], d["vin"], d["topic"], d["received_ms"]) == (
            "utf-8",
            vin,
            f"vehicles/{vin}/telemetry",
            NOW,
        )
        assert d["detail"]
    by_reason = {d["reason"]: d for d in listed}
    assert "Vehicle.Warp.Factor" in by_reason["unknown_signal"]["detail"]
    assert "180" in by_reason["out_of_range"]["detail"]
    assert na_vin(77) in by_reason["vin_mismatch"]["detail"]
    # The valid value of the partly bad message is in the twin; nothing of the others.
    reported = c.get(f"/v1/vehicles/{vin}/twin", headers=env.g).json()["reported"]
    assert reported == {SPEED: {"value": 12.5, "ts": NOW - 1_000, "received_ms": NOW}}
    # Filters, paging, the summary.
    only = c.get("/v1/dead-letters", params={"reason": "out_of_range"}, headers=env.g).json()[
        "items"
    ]
    assert [d["reason"] for d in only] == ["out_of_range"]
    assert (
        len(c.get("/v1/dead-letters", params={"vin": vin.lower()}, headers=env.g).json()["items"])
        == 5
    )
    first = c.get("/v1/dead-letters", params={"limit": 3}, headers=env.g).json()
    rest = c.get(
        "/v1/dead-letters", params={"limit": 3, "cursor": first["next"]}, headers=env.g
    ).json()
    assert [d["id"] for d in first["items"] + rest["items"]] == [d["id"] for d in listed]
    assert rest["next"] is None
    summary = c.get("/v1/dead-letters/summary", headers=env.g)
    assert summary.status_code == 200
    assert summary.json() == dict.fromkeys(bad, 1)
    # The brand sees every dead letter of its vehicle, malformed ones included.
    brand = c.get("/v1/dead-letters/summary", headers=env.alpha.h("viewer")).json()
    assert brand == dict.fromkeys(bad, 1)


def test_brand_sees_malformed_messages_of_its_vehicles(env: Env) -> None:
    env.ingest(raw(env.alpha.vin, b"not json"))
    items = env.client.get("/v1/dead-letters", headers=env.alpha.h("viewer")).json()["items"]
    assert [d["reason"] for d in items] == ["malformed"]


def test_binary_payloads_are_base64(env: Env) -> None:
    env.ingest(raw(env.alpha.vin, b"\xff\x00\xfe"), raw(na_vin(66), b"{}"))
    items = env.client.get("/v1/dead-letters", headers=env.g).json()["items"]
    assert [(d["reason"], d["payload_encoding"]) for d in items] == [
        ("schema", "utf-8"),
        ("malformed", "base64"),
    ]
    assert items[1]["payload"] == "/wD+"


# --- metrics, schema, docs --------------------------------------------------------------------


def test_metrics(env: Env) -> None:
    env.send(env.alpha.vin, NOW - 1_000, {SPEED: 1.0})
    env.send(env.alpha.vin, NOW - 900, {SOC: 999.0})
    env.ingest(raw(env.alpha.vin, b"{"), state(env.alpha.vin, True, NOW - 800))
    r = env.client.get("/metrics")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain")
    text = r.text
    assert 'autocloud_messages_in_total{topic="telemetry"} 3.0' in text
    assert 'autocloud_messages_in_total{topic="state"} 1.0' in text
    assert 'autocloud_dead_letters_total{reason="out_of_range"} 1.0' in text
    assert 'autocloud_dead_letters_total{reason="malformed"} 1.0' in text
    assert "autocloud_signals_stored_total 1.0" in text
    assert "autocloud_connected_vehicles 1.0" in text


def test_openapi_and_docs(env: Env) -> None:
    r = env.client.get("/openapi.json")
    assert r.status_code == 200
    schema = r.json()
    assert schema["openapi"].startswith("3.1")
    assert schema["info"]["title"] == "Autocloud"
    for path, method in [
        ("/v1/brands", "post"),
        ("/v1/vehicles", "post"),
        ("/v1/vehicles/{vin}", "delete"),
        ("/v1/vehicles/{vin}/credential", "post"),
        ("/v1/vehicles/{vin}/owners/{owner_id}", "delete"),
        ("/v1/owners", "get"),
        ("/v1/tokens/{token_id}", "delete"),
        ("/v1/vehicles/{vin}/twin/desired", "patch"),
        ("/v1/fleet", "get"),
        ("/v1/vehicles/{vin}/history", "get"),
        ("/v1/dead-letters", "get"),
        ("/v1/dead-letters/summary", "get"),
        ("/v1/signals", "get"),
        ("/v1/stream", "get"),
    ]:
        assert method in schema["paths"].get(path, {}), (path, method)
    brand_params = {p["name"] for p in schema["paths"]["/v1/dead-letters"]["get"]["parameters"]}
    assert {"brand", "reason", "vin", "cursor", "limit"} <= brand_params
    assert any(
        s.get("scheme") == "bearer" for s in schema["components"]["securitySchemes"].values()
    )
    docs = env.client.get("/docs")
    assert docs.status_code == 200
    assert docs.headers["content-type"].startswith("text/html")
    assert "swagger" in docs.text.lower() and "/openapi.json" in docs.text
    assert env.client.get("/healthz").json() == {"status": "ok", "ingest": "not started"}


def test_signals_catalog(env: Env) -> None:
    items = env.client.get("/v1/signals", headers=env.alpha.h("viewer")).json()["items"]
    soc = next(s for s in items if s["path"] == SOC)
    assert (soc["datatype"], soc["unit"], soc["min"], soc["max"]) == (
        "float",
        "percent",
        0.0,
        100.0,
    )


# --- every error is problem+json ----------------------------------------------------------------

BIG = str(2**70)
ERRORS: list[tuple[str, str, str, Any, str, int]] = [
    # (id, method, url, json body, token: g/alpha-viewer/none, status)
    ("no token", "GET", "/v1/fleet", None, "none", 401),
    ("viewer writes", "POST", "/v1/vehicles/{vin}/credential", None, "viewer", 403),
    ("unknown vehicle", "GET", "/v1/vehicles/" + eu_vin(999), None, "g", 404),
    ("unknown route", "GET", "/v1/nothing-here", None, "g", 404),
    ("duplicate", "POST", "/v1/brands", {"id": "alpha", "name": "A"}, "g", 409),
    ("bad body", "POST", "/v1/owners", {"brand": "alpha"}, "g", 422),
    ("bad json", "POST", "/v1/brands", "{", "g", 422),
    ("bad vin", "GET", "/v1/vehicles/NOTAVIN", None, "g", 422),
    ("bad limit", "GET", "/v1/dead-letters?limit=5000", None, "g", 422),
    ("bad cursor", "GET", "/v1/dead-letters?cursor=x", None, "g", 422),
    ("huge cursor", "GET", f"/v1/owners?cursor={BIG}", None, "g", 422),
    ("huge owner id", "DELETE", "/v1/vehicles/{vin}/owners/" + BIG, None, "g", 404),
    ("huge owner in body", "POST", "/v1/vehicles/{vin}/owners", {"owner_id": 2**70}, "g", 404),
    (
        "huge time",
        "GET",
        "/v1/vehicles/{vin}/history?signals=Vehicle.Speed&until=" + BIG,
        None,
        "g",
        422,
    ),
    (
        "huge history cursor",
        "GET",
        "/v1/vehicles/{vin}/history?signals=Vehicle.Speed&cursor=" + BIG + ":x",
        None,
        "g",
        422,
    ),
]


@pytest.mark.parametrize(
    ("method", "url", "body", "who", "status"), [e[1:] for e in ERRORS], ids=[e[0] for e in ERRORS]
)
def test_errors_are_problem_json(
    env: Env, method: str, url: str, body: Any, who: str, status: int
) -> None:
    headers = {"none": {}, "g": env.g, "viewer": env.alpha.h("viewer")}[who]
    kwargs: dict[str, Any] = (
        {"content": body, "headers": {**headers, "content-type": "application/json"}}
        if isinstance(body, str)
        else {"json": body, "headers": headers}
    )
    r = env.client.request(method, url.format(vin=env.alpha.vin), **kwargs)
    assert_problem(r, status)


def test_wrong_method_is_405_with_allow(env: Env) -> None:
    r = env.client.put("/v1/brands", headers=env.g)
    assert_problem(r, 405)
    # Starlette answers from the first route of the path, so only its methods are listed.
    assert "GET" in r.headers["allow"]


def test_unexpected_errors_are_problem_json_too(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.api.conftest import TestClient

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("secret internals")

    monkeypatch.setattr(env.platform.telemetry, "fleet", broken)
    client = TestClient(env.client.app, raise_server_exceptions=False)
    r = client.get("/v1/fleet", headers=env.g)
    assert_problem(r, 500)
    assert "secret internals" not in r.text


# --- one smoke run per database -----------------------------------------------------------------


@pytest.mark.parametrize(
    "backend", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
)
def test_smoke(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path, clean_environ: None
) -> None:
    """Provision, ingest, read back (twin, fleet, history pages, buckets, dead letters) and
    the tenant wall, on each database adapter."""
    db = request.getfixturevalue("pg_url") if backend == "postgresql" else None
    env = build_env(tmp_path, db=db)
    try:
        c, vin = env.client, na_vin(300)
        made = c.post(
            "/v1/vehicles",
            json={"vin": vin, "brand": "alpha", "model": "Smoke"},
            headers=env.alpha.h("operator"),
        )
        assert made.status_code == 201, made.text
        assert env.platform.registry.verify_vehicle(vin, made.json()["credential"]["password"])
        assert_problem(
            c.post("/v1/vehicles", json={"vin": vin, "brand": "alpha"}, headers=env.g), 409
        )
        for i in range(6):
            env.send(vin, T0 + 20_000 * i, {SPEED: 10.0 * i, SOC: 19.0 + i})
        env.ingest(state(vin, True, T0), raw(vin, b"{oops"))
        env.send(vin, NOW - 1_000, {SOC: 101.0, LOCKED: True})
        twin = c.get(f"/v1/vehicles/{vin}/twin", headers=env.alpha.h("viewer")).json()
        assert twin["reported"][SPEED] == {"value": 50.0, "ts": T0 + 100_000, "received_ms": NOW}
        assert twin["reported"][LOCKED]["value"] is True and twin["online"] is True
        fleet = c.get(
            "/v1/fleet", params={"where": f"{SOC}<20"}, headers=env.alpha.h("viewer")
        ).json()
        assert fleet["items"] == []  # the latest SoC is 24
        fleet = c.get(
            "/v1/fleet",
            params={"where": f"{SOC}>20", "online": "true"},
            headers=env.alpha.h("viewer"),
        ).json()
        assert [e["vin"] for e in fleet["items"]] == [vin]
        url = f"/v1/vehicles/{vin}/history"
        params: dict[str, Any] = {
            "signals": f"{SPEED},{SOC}",
            "since": T0,
            "until": NOW,
            "limit": 5,
        }
        points, cursor = [], None
        while True:
            body = c.get(
                url, params={**params, **({"cursor": cursor} if cursor else {})}, headers=env.g
            ).json()
            points += body["points"]
            if not (cursor := body["next"]):
                break
        assert len(points) == 12 and len({(p["path"], p["ts"]) for p in points}) == 12
        buckets = c.get(
            url, params={**params, "bucket": "1m", "until": T0 + 120_000}, headers=env.g
        ).json()["buckets"]
        first = next(b for b in buckets if b["path"] == SPEED and b["start"] == T0)
        assert first == {
            "path": SPEED,
            "start": T0,
            "count": 3,
            "min": 0.0,
            "avg": 10.0,
            "max": 20.0,
            "last": 20.0,
        }
        assert len(buckets) == 4
        assert c.get("/v1/dead-letters/summary", headers=env.g).json() == {
            "malformed": 1,
            "out_of_range": 1,
        }
        dead = c.get("/v1/dead-letters", params={"reason": "malformed"}, headers=env.g).json()[
            "items"
        ]
        assert dead[0]["payload"] == "{oops"
        assert_problem(c.get(f"/v1/vehicles/{vin}", headers=env.beta.h("admin")), 404)
        assert_problem(
            c.get("/v1/fleet", params={"brand": "alpha"}, headers=env.beta.h("admin")), 404
        )
        assert (
            c.get("/v1/vehicles", headers=env.beta.h("admin")).json()["items"][0]["vin"]
            == env.beta.vin
        )
        assert (
            Role.parse(c.get("/v1/tokens", headers=env.g).json()["items"][0]["role"]) is Role.ADMIN
        )
    finally:
        env.client.close()
        env.platform.stop()


def test_integer_signals_come_back_as_integers(env: Env) -> None:
    """History stores numbers as floats; an integer VSS signal is served as an integer."""
    odometer = "Vehicle.TraveledDistance"
    env.ingest(telemetry(env.alpha.vin, 1, NOW - 1000, {odometer: 42_000, SPEED: 12.5}))
    points = env.client.get(
        f"/v1/vehicles/{env.alpha.vin}/history",
        params={"signals": f"{odometer},{SPEED}", "since": str(NOW - 5000), "until": str(NOW)},
        headers=env.g,
    ).json()["points"]
    assert {p["path"]: p["value"] for p in points} == {odometer: 42_000, SPEED: 12.5}
    assert isinstance(next(p["value"] for p in points if p["path"] == odometer), int)


def test_a_vin_registered_again_streams_into_its_new_twin(env: Env) -> None:
    """Ingest must not keep attributing a removed VIN to the vehicle it used to be, whoever
    removed it (the API route, the CLI, another service)."""
    c, vin = env.client, env.alpha.vin
    env.send(vin, NOW - 5_000, {"Vehicle.Speed": 10.0})
    env.platform.registry.remove_vehicle(SYSTEM, vin)
    r = c.post("/v1/vehicles", json={"vin": vin, "brand": "alpha"}, headers=env.g)
    assert r.status_code == 201, r.text
    batch = env.send(vin, NOW - 4_000, {"Vehicle.Speed": 42.0})
    assert batch.out.dead_letters == []
    twin = c.get(f"/v1/vehicles/{vin}/twin", headers=env.alpha.h()).json()
    assert twin["reported"]["Vehicle.Speed"]["value"] == 42.0
