"""The /v1/gateways API: create (secret once), grant and revoke in bulk, list, delete."""

from autocloud.domain.gateway import gateway_username
from tests.api.conftest import Env, auth, eu_vin, na_vin

PROBLEM_JSON = "application/problem+json"


def _make(env: Env, name: str = "depot-1", role: str = "operator") -> dict[str, object]:
    r = env.client.post("/v1/gateways", json={"name": name}, headers=env.alpha.h(role))
    assert r.status_code == 201, r.text
    body: dict[str, object] = r.json()
    return body


def test_create_shows_the_credential_once(env: Env) -> None:
    made = _make(env)
    gateway, credential = made["gateway"], made["credential"]
    assert isinstance(gateway, dict) and isinstance(credential, dict)
    assert gateway["brand"] == "alpha" and gateway["vins"] == 0
    assert credential["username"] == credential["client_id"] == gateway_username("alpha", "depot-1")
    secret = credential["password"]
    assert isinstance(secret, str) and len(secret) >= 32
    got = env.client.get(f"/v1/gateways/{gateway['id']}", headers=env.alpha.h("viewer"))
    assert got.status_code == 200 and secret not in got.text
    listed = env.client.get("/v1/gateways", headers=env.alpha.h("viewer")).text
    assert secret not in listed
    # The broker's login check: the secret, and only it, opens the gateway.
    assert env.platform.gateways is not None
    assert env.platform.gateways.verify(str(credential["username"]), secret) == frozenset()
    assert env.platform.gateways.verify(str(credential["username"]), "wrong") is None
    assert env.platform.gateways.verify("gw.alpha.nosuch", secret) is None


def test_grant_revoke_and_list_in_bulk(env: Env) -> None:
    vins = [na_vin(100 + i) for i in range(50)]
    for vin in vins:
        r = env.client.post("/v1/vehicles", json={"vin": vin, "brand": "alpha"}, headers=env.g)
        assert r.status_code == 201, r.text
    gateway = _make(env)["gateway"]
    assert isinstance(gateway, dict)
    url = f"/v1/gateways/{gateway['id']}"
    h = env.alpha.h("operator")
    r = env.client.post(f"{url}/grant", json={"vins": [v.lower() for v in vins]}, headers=h)
    assert r.status_code == 200, r.text
    assert r.json()["vins"] == 50
    r = env.client.post(f"{url}/grant", json={"vins": [*vins[:10], env.alpha.vin]}, headers=h)
    assert r.json()["vins"] == 51  # granting again is harmless
    r = env.client.post(f"{url}/revoke", json={"vins": vins[:20]}, headers=h)
    assert r.json()["vins"] == 31
    got = env.client.get(url, headers=h).json()
    assert got["vins"] == sorted([*vins[20:], env.alpha.vin])


def test_foreign_and_unknown_vins_are_refused_alike(env: Env) -> None:
    gateway = _make(env)["gateway"]
    assert isinstance(gateway, dict)
    url = f"/v1/gateways/{gateway['id']}/grant"
    h = env.alpha.h("operator")
    foreign = env.client.post(url, json={"vins": [env.alpha.vin, env.beta.vin]}, headers=h)
    ghost = env.client.post(url, json={"vins": [env.alpha.vin, eu_vin(999_999)]}, headers=h)
    assert foreign.status_code == ghost.status_code == 422
    assert foreign.headers["content-type"] == PROBLEM_JSON
    assert foreign.json()["detail"] == ghost.json()["detail"]
    assert env.beta.vin not in foreign.text
    # All or nothing: alpha's own VIN was not granted either.
    assert env.client.get(f"/v1/gateways/{gateway['id']}", headers=h).json()["vins"] == []
    bad = env.client.post(url, json={"vins": ["NOT-A-VIN"]}, headers=h)
    assert bad.status_code == 422


def test_roles_and_names(env: Env) -> None:
    r = env.client.post("/v1/gateways", json={"name": "x"}, headers=env.alpha.h("viewer"))
    assert r.status_code == 403
    for name in ("Depot", "a/b", "", "gw.x", "-x"):
        r = env.client.post("/v1/gateways", json={"name": name}, headers=env.alpha.h())
        assert r.status_code == 422, name
    _make(env, "hub")
    again = env.client.post("/v1/gateways", json={"name": "hub"}, headers=env.alpha.h())
    assert again.status_code == 409
    # The same name in another brand is another gateway.
    r = env.client.post("/v1/gateways", json={"name": "hub", "brand": "beta"}, headers=env.g)
    assert r.status_code == 201
    # A group token must say which brand.
    assert env.client.post("/v1/gateways", json={"name": "x"}, headers=env.g).status_code == 422


def test_delete_needs_admin_and_removes_the_login(env: Env) -> None:
    made = _make(env)
    gateway, credential = made["gateway"], made["credential"]
    assert isinstance(gateway, dict) and isinstance(credential, dict)
    url = f"/v1/gateways/{gateway['id']}"
    assert env.client.delete(url, headers=env.alpha.h("operator")).status_code == 403
    assert env.client.delete(url, headers=env.alpha.h("admin")).status_code == 204
    assert env.client.get(url, headers=env.alpha.h()).status_code == 404
    assert env.platform.gateways is not None
    login, secret = str(credential["username"]), str(credential["password"])
    assert env.platform.gateways.verify(login, secret) is None
    assert env.client.get("/v1/gateways", headers=auth(env.group_token)).json()["items"] == []
