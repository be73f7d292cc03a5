"""Tenant isolation: brand alpha's tokens can learn nothing about brand beta.

The heart is the wrong-tenant walk. It discovers every /v1 route of the app, fills each
with beta's things (path parameters, `brand=`/`vin=` queries, bodies that name beta), calls
it with an alpha token, and asserts that:

* the answer is a refusal (404; 403/422 where refused before any lookup) in problem+json,
* the answer is the same as for a thing that does not exist at all (so it is no oracle),
* no byte of beta's data (VIN, names, owner, credential, tokens) is in the response,
* beta is unchanged afterwards.

A route the walk cannot fill (a new path parameter, a required query, a body it has no
example of, a stream it cannot call safely) fails `test_walk_covers_every_route`, so new
routes are covered automatically or loudly.
"""

import asyncio
import hashlib
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi import FastAPI
from fastapi.routing import APIRoute
from sse_starlette.sse import EventSourceResponse
from starlette.responses import StreamingResponse

from autocloud.domain.command_signing import key_id, raw_public_key
from autocloud.domain.errors import NotFound
from autocloud.entrypoints.api import routes_stream
from autocloud.services.fanout import Change, Hub
from tests.api.conftest import (
    LOCKED,
    NOW,
    ROLES,
    SOC,
    SPEED,
    Env,
    Tenant,
    eu_vin,
    na_vin,
    state,
    telemetry,
)

PROBLEM_JSON = "application/problem+json"


# --- route discovery -------------------------------------------------------------------------


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str
    route: APIRoute

    def __str__(self) -> str:
        return f"{self.method} {self.path}"


def endpoints(app: FastAPI) -> list[Endpoint]:
    """Every (method, path) of the app's /v1 API routes, including those of included routers.

    FastAPI >= 0.16x keeps included routers as `_IncludedRouter` entries in `app.routes`
    (a plain `isinstance(r, APIRoute)` scan finds only the app's own routes), so walk the
    effective routes when the installed FastAPI offers that.
    """
    try:
        from fastapi.routing import iter_route_contexts
    except ImportError:  # older FastAPI: app.routes holds every APIRoute, prefix applied
        found = [(r.path, r.methods, r) for r in app.routes if isinstance(r, APIRoute)]
    else:
        found = [
            (rc.path, rc.methods, rc.original_route)
            for rc in iter_route_contexts(app.routes)
            if isinstance(rc.original_route, APIRoute)
        ]
    out = []
    for path, methods, route in found:
        if path is None or not path.startswith("/v1/"):
            continue
        for method in sorted(set(methods or ()) - {"HEAD", "OPTIONS"}):
            out.append(Endpoint(method, path, route))
    return out


def _dependants(route: APIRoute) -> Iterator[Any]:
    stack = [route.dependant]
    while stack:
        dependant = stack.pop()
        yield dependant
        stack.extend(dependant.dependencies)


def path_params(route: APIRoute) -> list[str]:
    return [p.alias for d in _dependants(route) for p in d.path_params]


def query_params(route: APIRoute) -> dict[str, bool]:
    """Query parameter name -> required."""
    return {q.alias: q.field_info.is_required() for d in _dependants(route) for q in d.query_params}


def is_streaming(route: APIRoute) -> bool:
    cls = getattr(route.response_class, "value", route.response_class)
    return isinstance(cls, type) and issubclass(cls, StreamingResponse | EventSourceResponse)


# --- how to fill a route with one tenant's things ---------------------------------------------


@dataclass
class Refs:
    """The identifiers the walk puts into requests: a real tenant's, or a ghost's."""

    brand: str
    vin: str
    owner_id: int
    token_id: int
    command_id: str = "0" * 32
    gateway_id: int = 999_996
    rule_id: int = 999_995
    alert_id: int = 999_994
    kid: str = "0" * 16

    @classmethod
    def of(cls, t: Tenant) -> "Refs":
        found = cls(t.id, t.vin, t.owner_id, t.token_ids["admin"], t.command_id)
        found.kid = key_id(tenant_app_key(t.id))
        found.gateway_id = t.gateway_id
        found.rule_id, found.alert_id = t.rule_id, t.alert_id
        return found


GHOST = Refs(brand="nosuch", vin=eu_vin(999_999), owner_id=999_998, token_id=999_997)
APP_KEY = "3e752773a25c7bac4d5f6925bcc858fbaea823c1efbe8a90c1b4ec56137e243f"  # an Ed25519 key
SLOW = {"path": SPEED, "op": "<", "threshold": 1}  # an alert rule's condition
FRESH_VIN = na_vin(777)  # a VIN nobody registered: for bodies that create a vehicle

PATH_REFS: dict[str, Callable[[Refs], Any]] = {
    "vin": lambda r: r.vin,
    "owner_id": lambda r: r.owner_id,
    "token_id": lambda r: r.token_id,
    "command_id": lambda r: r.command_id,
    "gateway_id": lambda r: r.gateway_id,
    "rule_id": lambda r: r.rule_id,
    "alert_id": lambda r: r.alert_id,
    "session_id": lambda r: f"ds{r.token_id:016x}",  # diagnostics: the VIN decides first
    "webhook_id": lambda r: r.token_id,  # beta's real ones: tests/api/test_webhooks_api.py
    "delivery_id": lambda r: r.token_id,
    "kid": lambda r: r.kid,  # the app key `seed` enrolled with the tenant's vehicle
}
# Query parameters that name a tenant's thing; `brand` always targets, `vin` on a list is a
# filter (an empty result is a fine answer) but on a stream it must be refused up front.
QUERY_REFS: dict[str, Callable[[Refs], Any]] = {"brand": lambda r: r.brand, "vin": lambda r: r.vin}
REQUIRED_QUERIES: dict[str, str] = {"signals": f"{SPEED},{SOC}"}
BODIES: dict[tuple[str, str], Callable[[Refs], Any]] = {
    ("POST", "/v1/brands"): lambda r: {"id": r.brand, "name": "Walker Motors"},
    ("POST", "/v1/vehicles"): lambda r: {"vin": FRESH_VIN, "brand": r.brand, "model": "Walker"},
    ("POST", "/v1/vehicles/{vin}/owners"): lambda r: {"owner_id": r.owner_id},
    ("POST", "/v1/owners"): lambda r: {"brand": r.brand, "name": "Mallory", "email": "m@x.example"},
    ("POST", "/v1/tokens"): lambda r: {"name": "walker", "role": "admin", "brand": r.brand},
    ("PATCH", "/v1/vehicles/{vin}/twin/desired"): lambda r: {LOCKED: True},
    ("POST", "/v1/gateways"): lambda r: {"name": "walker", "brand": r.brand},
    ("POST", "/v1/alert-rules"): lambda r: {"name": "w", "brand": r.brand, "signal": SLOW},
    ("PUT", "/v1/alert-rules/{rule_id}"): lambda r: {"name": "w", "brand": r.brand, "signal": SLOW},
    ("POST", "/v1/gateways/{gateway_id}/grant"): lambda r: {"vins": [r.vin]},
    ("POST", "/v1/gateways/{gateway_id}/revoke"): lambda r: {"vins": [r.vin]},
    ("POST", "/v1/vehicles/{vin}/commands"): lambda r: {"name": "lock"},
    ("POST", "/v1/vehicles/{vin}/keys"): lambda r: {"public_key": APP_KEY, "label": "walker"},
    ("POST", "/v1/vehicles/{vin}/commands/signed"): lambda r: {
        **{"v": 1, "id": "walker-0001", "vin": r.vin, "name": "lock", "params": {}},
        **{"issued": NOW, "expires": NOW + 60_000, "counter": 1, "kid": "0" * 16, "sig": "AA"},
    },
    ("POST", "/v1/vehicles/{vin}/diagnostics"): lambda r: {"ecus": ["ECM"], "reads": ["vin"]},
    ("POST", "/v1/webhooks"): lambda r: {
        "url": "https://hooks.example/autocloud",
        "events": ["alert"],
        "brand": r.brand,
    },
}
# More query variants of routes whose answer takes several shapes.
EXTRA_QUERIES: dict[tuple[str, str], list[dict[str, str]]] = {
    ("GET", "/v1/vehicles/{vin}/history"): [
        {},
        {"format": "csv"},
        {"bucket": "1m"},
        {"bucket": "1m", "format": "csv"},
        {"limit": "1"},
    ],
}


@dataclass
class Call:
    endpoint: Endpoint
    label: str
    targeted: bool  # names beta's thing: must be refused, not just filtered
    build: Callable[[Refs], tuple[str, dict[str, Any], Any]]  # refs -> (url, params, json)


def unfillable(ep: Endpoint) -> list[str]:
    """Why the walk cannot call `ep` (empty when it can)."""
    problems = [f"path parameter {p!r}" for p in path_params(ep.route) if p not in PATH_REFS]
    queries = query_params(ep.route)
    problems += [
        f"required query {q!r}"
        for q, required in queries.items()
        if required and q not in REQUIRED_QUERIES and q not in QUERY_REFS
    ]
    if ep.route.body_field is not None and (ep.method, ep.path) not in BODIES:
        problems.append("a request body (add an example to BODIES)")
    if is_streaming(ep.route) and not set(queries) & set(QUERY_REFS) and not path_params(ep.route):
        problems.append("a stream with no tenant parameter to target (it would never end)")
    return problems


def calls(ep: Endpoint) -> list[Call]:
    """The requests the walk makes to one endpoint."""
    route = ep.route
    paths = path_params(route)
    queries = query_params(route)
    refs_in_query = [q for q in queries if q in QUERY_REFS]
    body = BODIES.get((ep.method, ep.path))
    streaming = is_streaming(route)

    def make(query_refs: list[str], extra: dict[str, str]) -> Callable[[Refs], Any]:
        def build(r: Refs) -> tuple[str, dict[str, Any], Any]:
            url = ep.path
            for name in paths:
                url = url.replace("{" + name + "}", str(PATH_REFS[name](r)))
            params: dict[str, Any] = {q: v for q, v in REQUIRED_QUERIES.items() if q in queries}
            params.update({q: QUERY_REFS[q](r) for q in query_refs})
            params.update(extra)
            return url, params, body(r) if body else None

        return build

    def targeted(query_refs: list[str]) -> bool:
        return bool(paths or body or "brand" in query_refs or (streaming and query_refs))

    variants: list[Call] = []
    for extra in EXTRA_QUERIES.get((ep.method, ep.path), [{}]):
        label = "all refs" + (f" {extra}" if extra else "")
        variants.append(Call(ep, label, targeted(refs_in_query), make(refs_in_query, extra)))
    if len(refs_in_query) > 1:
        for q in refs_in_query:
            variants.append(Call(ep, f"only {q}=", targeted([q]), make([q], {})))
    return variants


# --- response checks --------------------------------------------------------------------------


@dataclass
class Answer:
    status_code: int
    content_type: str
    text: str


def fetch(env: Env, method: str, url: str, **kwargs: Any) -> Answer:
    """One request; an event stream that opens is read only up to its first chunk (a stream
    the walk should not have been let into would otherwise never end)."""
    with env.client.stream(method, url, **kwargs) as r:
        content_type = r.headers.get("content-type", "")
        if r.status_code == 200 and content_type.startswith("text/event-stream"):
            text = next(r.iter_text(), "") + " [the stream opened]"
        else:
            text = r.read().decode()
    return Answer(r.status_code, content_type, text)


def _normalised(text: str, refs: Refs, sent: str) -> str:
    """Response text with the identifiers the request carried (`sent`) made placeholders."""
    for value, placeholder in (
        (refs.vin, "<vin>"),
        (refs.brand, "<brand>"),
        (str(refs.owner_id), "<id>"),  # one placeholder: ids of different kinds may coincide
        (str(refs.token_id), "<id>"),
        (str(refs.rule_id), "<id>"),
        (str(refs.alert_id), "<id>"),
    ):
        if re.search(rf"\b{re.escape(value)}\b", sent):
            text = re.sub(rf"\b{re.escape(value)}\b", placeholder, text)
    return text


def leaked(text: str, beta: Tenant) -> list[str]:
    """Beta's data in a response text (beta's brand id may be echoed; nothing else)."""
    marks = [*beta.secrets(), *beta.tokens.values(), *(f"beta-{role}" for role in ROLES)]
    return [m for m in marks if m in text]


def tenant_app_key(brand: str) -> bytes:
    """The public key of an app enrolled with the tenant's vehicle (fixed per tenant)."""
    private = Ed25519PrivateKey.from_private_bytes(hashlib.sha256(brand.encode()).digest())
    return raw_public_key(private.public_key())


def seed(env: Env) -> None:
    """Give both tenants history, a twin, presence, a desired value and dead letters."""
    for tenant, bad in ((env.alpha, {SOC: 140.0}), (env.beta, {SOC: 150.0, "Vehicle.Nope": 1})):
        r = env.client.post(
            f"/v1/vehicles/{tenant.vin}/keys",
            json={"public_key": tenant_app_key(tenant.id).hex(), "label": "fleet app"},
            headers=env.g,
        )
        assert r.status_code == 201, r.text
        env.send(tenant.vin, NOW - 120_000, {SPEED: 50.0, SOC: 40.0})
        env.send(tenant.vin, NOW - 60_000, {SPEED: 60.0, SOC: 39.0})
        env.send(tenant.vin, NOW - 30_000, bad)
        fast = {"path": SPEED, "op": ">", "threshold": 55}
        rule = {"name": "fast", "brand": tenant.id, "signal": fast}
        r = env.client.post("/v1/alert-rules", json=rule, headers=env.g)
        assert r.status_code == 201, r.text
        tenant.rule_id = r.json()["id"]
        env.send(tenant.vin, NOW - 20_000, {SPEED: 61.0})  # opens an alert of that rule
        r = env.client.get("/v1/alerts", params={"brand": tenant.id}, headers=env.g)
        tenant.alert_id = r.json()["items"][0]["id"]
        env.ingest(state(tenant.vin, True, NOW - 100_000))
        r = env.client.patch(
            f"/v1/vehicles/{tenant.vin}/twin/desired", json={LOCKED: False}, headers=env.g
        )
        assert r.status_code == 200, r.text
        r = env.client.post(
            f"/v1/vehicles/{tenant.vin}/commands", json={"name": "lock"}, headers=env.g
        )
        assert r.status_code == 201, r.text
        tenant.command_id = r.json()["id"]
        r = env.client.post(
            "/v1/gateways", json={"name": "depot", "brand": tenant.id}, headers=env.g
        )
        assert r.status_code == 201, r.text
        tenant.gateway_id = r.json()["gateway"]["id"]
        r = env.client.post(
            f"/v1/gateways/{tenant.gateway_id}/grant", json={"vins": [tenant.vin]}, headers=env.g
        )
        assert r.status_code == 200, r.text


def snapshot(env: Env) -> dict[str, Any]:
    """Everything the group admin can see of beta (to prove the walk changed nothing)."""
    c, g, b = env.client, env.g, env.beta
    got = {
        "vehicle": c.get(f"/v1/vehicles/{b.vin}", headers=g).json(),
        "vehicles": c.get("/v1/vehicles", params={"brand": "beta"}, headers=g).json(),
        "owners": c.get("/v1/owners", params={"brand": "beta"}, headers=g).json(),
        "tokens": c.get("/v1/tokens", params={"brand": "beta"}, headers=g).json(),
        "gateways": c.get("/v1/gateways", params={"brand": "beta"}, headers=g).json(),
        "alert_rules": c.get("/v1/alert-rules", params={"brand": "beta"}, headers=g).json(),
        "alerts": c.get("/v1/alerts", params={"brand": "beta"}, headers=g).json(),
        "health": c.get(f"/v1/vehicles/{b.vin}/health", headers=g).json(),
        "brands": c.get("/v1/brands", headers=g).json(),
        "twin": c.get(f"/v1/vehicles/{b.vin}/twin", headers=g).json(),
        "commands": c.get("/v1/commands", params={"brand": "beta"}, headers=g).json(),
        "keys": c.get(f"/v1/vehicles/{b.vin}/keys", headers=g).json(),
        "credential_ok": env.platform.registry.verify_vehicle(b.vin, b.secret),
    }
    got["twin"].pop("online", None)  # presence is not the walk's business
    return got


# --- the walk ---------------------------------------------------------------------------------


def test_walk_covers_every_route(env: Env) -> None:
    """Every /v1 route is discovered and the walk knows how to fill it."""
    found = endpoints(env.client.app)  # type: ignore[arg-type]
    names = {str(e) for e in found}
    # The discovery itself must work: these are known to exist (a scan that silently finds
    # nothing would make the walk vacuous).
    for known in (
        "GET /v1/vehicles/{vin}",
        "DELETE /v1/vehicles/{vin}",
        "PATCH /v1/vehicles/{vin}/twin/desired",
        "GET /v1/vehicles/{vin}/history",
        "DELETE /v1/tokens/{token_id}",
        "GET /v1/stream",
    ):
        assert known in names, f"route discovery missed {known}: {sorted(names)}"
    # ... and agree with the published schema: every documented /v1 operation is walked.
    schema = env.client.get("/openapi.json").json()
    documented = {
        f"{method.upper()} {path}"
        for path, ops in schema["paths"].items()
        if path.startswith("/v1/")
        for method in ops
    }
    assert documented <= names, f"documented but not walked: {sorted(documented - names)}"
    gaps = {str(e): unfillable(e) for e in found if unfillable(e)}
    assert not gaps, (
        "the wrong-tenant walk cannot fill these routes; teach it (PATH_REFS, QUERY_REFS, "
        f"REQUIRED_QUERIES, BODIES) so they are covered: {gaps}"
    )
    # Bodies for routes that no longer exist are stale.
    assert set(BODIES) <= {(e.method, e.path) for e in found}


@pytest.mark.timeout(60)  # a stream the walk wrongly opens would otherwise never end
@pytest.mark.parametrize("role", ROLES)
def test_wrong_tenant_walk(env: Env, role: str) -> None:
    seed(env)
    before = snapshot(env)
    headers = env.alpha.h(role)
    beta, ghost = Refs.of(env.beta), GHOST
    failures: list[str] = []
    walked = 0
    for ep in endpoints(env.client.app):  # type: ignore[arg-type]
        if unfillable(ep):
            continue  # reported by test_walk_covers_every_route
        for call in calls(ep):
            walked += 1
            answers: list[Any] = []
            for refs in (beta, ghost):
                url, params, body = call.build(refs)
                r = fetch(env, ep.method, url, params=params, json=body, headers=headers)
                answers.append(_normalised(r.text, refs, f"{url} {params} {body}"))
                answers.append(r)
            norm, r, norm_ghost, r_ghost = answers
            where = f"{ep} [{call.label}]"
            if leaked(r.text, env.beta):
                failures.append(f"{where}: response reveals {leaked(r.text, env.beta)}: {r.text}")
            if call.targeted:
                allowed = {404} if role == "admin" else {403, 404}
                if r.status_code not in allowed | {422}:
                    failures.append(f"{where}: status {r.status_code}, want 404: {r.text[:300]}")
                elif r.content_type != PROBLEM_JSON:
                    failures.append(f"{where}: refusal is not problem+json: {r.content_type}")
            elif r.status_code >= 500:
                failures.append(f"{where}: status {r.status_code}: {r.text[:300]}")
            else:
                body_json = json.loads(r.text) if "json" in r.content_type else {}
                items = body_json.get("items", []) if isinstance(body_json, dict) else []
                foreign = [
                    i
                    for i in items
                    if isinstance(i, dict) and i.get("brand") not in (None, "alpha")
                ]
                if foreign:
                    failures.append(f"{where}: lists another tenant's items: {foreign}")
            # Indistinguishable from asking about something that does not exist.
            if r.status_code != r_ghost.status_code or norm != norm_ghost:
                failures.append(
                    f"{where}: beta's thing answers differently from a non-existent one: "
                    f"{r.status_code} {r.text[:200]} vs {r_ghost.status_code} {r_ghost.text[:200]}"
                )
    assert walked >= 25, f"the walk made only {walked} calls"
    assert not failures, "\n".join(failures)
    assert snapshot(env) == before, "the walk changed beta's state"


# --- lists ------------------------------------------------------------------------------------

LISTS = [
    "/v1/vehicles",
    "/v1/fleet",
    "/v1/owners",
    "/v1/dead-letters",
    "/v1/brands",
    "/v1/tokens",
    "/v1/gateways",
    "/v1/alert-rules",
    "/v1/alerts",
]


@pytest.mark.parametrize("url", LISTS)
def test_lists_show_only_own_tenant(env: Env, url: str) -> None:
    seed(env)
    # Beta has items here at all (else "no beta item" proves nothing).
    group = env.client.get(url, headers=env.g).json()["items"]
    assert any(_brand_of(i) == "beta" for i in group), group
    got = env.client.get(url, headers=env.alpha.h("admin"))
    assert got.status_code == 200, got.text
    items = got.json()["items"]
    assert items, "alpha sees nothing of its own"
    assert {_brand_of(i) for i in items} == {"alpha"}
    assert not leaked(got.text, env.beta)


@pytest.mark.parametrize("url", [*LISTS, "/v1/dead-letters/summary", "/v1/stream"])
def test_foreign_brand_filter_is_404(env: Env, url: str) -> None:
    r = env.client.get(url, params={"brand": "beta"}, headers=env.alpha.h("admin"))
    assert r.status_code == 404, r.text
    assert r.headers["content-type"] == PROBLEM_JSON
    assert r.json()["status"] == 404
    # Exactly what a brand that does not exist gets.
    ghost = env.client.get(url, params={"brand": "nosuch"}, headers=env.alpha.h("admin"))
    assert ghost.json()["detail"] == r.json()["detail"].replace("beta", "nosuch")


def test_group_admin_can_filter_any_brand(env: Env) -> None:
    seed(env)
    for url in LISTS:
        r = env.client.get(url, params={"brand": "beta"}, headers=env.g)
        assert r.status_code == 200, (url, r.text)
        assert {_brand_of(i) for i in r.json()["items"]} == {"beta"}, url


def test_dead_letter_summary_counts_only_own_tenant(env: Env) -> None:
    seed(env)
    alpha = env.client.get("/v1/dead-letters/summary", headers=env.alpha.h("viewer")).json()
    beta = env.client.get("/v1/dead-letters/summary", headers=env.beta.h("viewer")).json()
    assert alpha == {"out_of_range": 1}
    assert beta == {"out_of_range": 1, "unknown_signal": 1}


def test_alpha_admin_cannot_touch_group_tokens(env: Env) -> None:
    group_id = next(
        t["id"]
        for t in env.client.get("/v1/tokens", headers=env.g).json()["items"]
        if t["brand"] is None
    )
    h = env.alpha.h("admin")
    assert all(
        t["brand"] == "alpha" for t in env.client.get("/v1/tokens", headers=h).json()["items"]
    )
    assert env.client.delete(f"/v1/tokens/{group_id}", headers=h).status_code == 404
    # A brand admin's new token is always of its own brand, never a group token.
    made = env.client.post("/v1/tokens", json={"name": "x", "role": "admin"}, headers=h).json()
    assert made["brand"] == "alpha"
    assert env.client.get("/v1/tokens", headers=env.g).status_code == 200  # group token alive


def test_registering_a_vin_of_another_tenant_reveals_no_owner(env: Env) -> None:
    """VINs are globally unique, so the VIN being taken cannot be hidden; who has it can."""
    r = env.client.post(
        "/v1/vehicles", json={"vin": env.beta.vin, "brand": "alpha"}, headers=env.alpha.h("admin")
    )
    assert r.status_code == 409
    assert r.headers["content-type"] == PROBLEM_JSON
    assert "beta" not in r.text.lower().replace(env.beta.vin.lower(), "")
    assert not [m for m in leaked(r.text, env.beta) if m != env.beta.vin]


def _brand_of(item: dict[str, Any]) -> str | None:
    return item["brand"] if "brand" in item else item.get("id")  # brands list their own id


# --- the live stream --------------------------------------------------------------------------


def test_stream_refuses_foreign_brand_and_vehicle(env: Env) -> None:
    h = env.alpha.h("viewer")
    for params in ({"brand": "beta"}, {"vin": env.beta.vin}, {"vin": env.beta.vin.lower()}):
        r = env.client.get("/v1/stream", params=params, headers=h)
        assert r.status_code == 404, (params, r.text)
        assert r.headers["content-type"] == PROBLEM_JSON
        assert not leaked(r.text, env.beta)
    # The browser form (?access_token=, EventSource cannot send headers) is checked alike.
    r = env.client.get(
        "/v1/stream", params={"brand": "beta", "access_token": env.alpha.tokens["viewer"]}
    )
    assert r.status_code == 404
    assert env.client.get("/v1/stream", params={"brand": "beta"}).status_code == 401


def _change(kind: str, vin: str, brand: str, n: int = 0) -> Change:
    return Change(kind, vin, brand, {"n": n})


def test_stream_filter_is_tenant_scoped() -> None:
    a, b = na_vin(1), eu_vin(2)
    alpha_only = routes_stream.change_filter("alpha", None)
    assert alpha_only(_change("twin", a, "alpha"))
    assert not alpha_only(_change("twin", b, "beta"))
    # Dead letters of messages no vehicle could be matched to carry no brand: group only.
    assert not alpha_only(_change("dead_letter", "", ""))
    assert not alpha_only(_change("dead_letter", b, "beta"))
    one = routes_stream.change_filter("alpha", a)
    assert one(_change("presence", a, "alpha"))
    assert not one(_change("presence", na_vin(5), "alpha"))
    # Even a VIN filter cannot widen the tenant: a beta change with alpha's VIN is refused.
    assert not one(_change("presence", a, "beta"))
    group = routes_stream.change_filter(None, None)
    assert all(group(c) for c in (_change("twin", a, "alpha"), _change("dead_letter", "", "")))


def test_hub_delivers_each_subscriber_only_its_tenant() -> None:
    async def scenario() -> tuple[list[Change], list[Change], list[Change]]:
        hub = Hub()
        alpha = hub.subscribe(routes_stream.change_filter("alpha", None))
        beta = hub.subscribe(routes_stream.change_filter("beta", None))
        group = hub.subscribe(routes_stream.change_filter(None, None))
        hub.publish(
            [
                _change("twin", "A", "alpha", 1),
                _change("twin", "B", "beta", 2),
                _change("dead_letter", "", "", 3),
            ]
        )
        hub.publish([_change("event", "B", "beta", 4), _change("presence", "A", "alpha", 5)])
        await asyncio.sleep(0)  # deliveries are scheduled with call_soon_threadsafe
        drained = []
        for sub in (alpha, beta, group):
            got = []
            while not sub.queue.empty():
                change = sub.queue.get_nowait()
                assert change is not None
                got.append(change)
            drained.append(got)
        return drained[0], drained[1], drained[2]

    alpha, beta, group = asyncio.run(scenario())
    assert [c.data["n"] for c in alpha] == [1, 5]
    assert [c.data["n"] for c in beta] == [2, 4]
    assert [c.data["n"] for c in group] == [1, 2, 3, 4, 5]


def _sse_data(lines: Iterator[str], count: int) -> list[tuple[str, dict[str, Any]]]:
    """The next `count` events (name, JSON data) of a server-sent event stream."""
    events, name = [], ""
    while len(events) < count:
        line = next(lines)
        if line.startswith("event:"):
            name = line.removeprefix("event:").strip()
        elif line.startswith("data:"):
            events.append((name, json.loads(line.removeprefix("data:"))))
    return events


@pytest.mark.timeout(30)
def test_stream_sends_only_own_tenant_changes(env: Env) -> None:
    """Over HTTP, fed by real ingest: alpha's stream carries alpha's changes, nothing of beta."""
    with env.client.stream("GET", "/v1/stream", headers=env.alpha.h("viewer")) as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        lines = r.iter_lines()
        assert _sse_data(lines, 1) == [("ready", {})]
        assert env.platform.hub.subscribers == 1
        env.send(env.beta.vin, NOW - 5_000, {SPEED: 11.0})
        env.send(env.alpha.vin, NOW - 4_000, {SPEED: 22.0})
        env.send(env.beta.vin, NOW - 3_000, {SOC: 250.0})  # a beta dead letter
        env.ingest(state(env.beta.vin, True, NOW - 2_500))  # beta presence
        env.send(env.alpha.vin, NOW - 2_000, {SOC: 180.0})  # an alpha dead letter
        env.send(env.alpha.vin, NOW - 1_000, {SPEED: 33.0})
        # In order: had anything of beta slipped through, it would come before these.
        got = _sse_data(lines, 3)
    assert env.platform.hub.subscribers == 0  # closing the stream unsubscribed it
    assert [(kind, data["brand"]) for kind, data in got] == [
        ("twin", "alpha"),
        ("dead_letter", "alpha"),
        ("twin", "alpha"),
    ]
    assert got[0][1]["signals"] == {SPEED: {"value": 22.0, "ts": NOW - 4_000}}
    assert got[2][1]["signals"] == {SPEED: {"value": 33.0, "ts": NOW - 1_000}}
    assert env.beta.vin not in json.dumps(got)


def test_registry_lookup_outside_tenant_is_not_found(env: Env) -> None:
    """The service rule the API relies on, for the CLI and any other entry point too."""
    who = env.platform.registry.authenticate(env.alpha.tokens["admin"])
    with pytest.raises(NotFound) as caught:
        env.platform.registry.vehicle(who, env.beta.vin)
    assert env.beta.vin not in str(caught.value)


def test_a_vehicle_registered_after_a_delete_inherits_nothing(env: Env) -> None:
    """Deleting beta's vehicle must not hand its twin or history to whoever registers next
    (ids freed by a delete were once reused by SQLite, and telemetry rows stayed behind)."""
    env.send(env.beta.vin, NOW - 2_000, {SPEED: 99.0})
    r = env.client.patch(
        f"/v1/vehicles/{env.beta.vin}/twin/desired", json={LOCKED: True}, headers=env.g
    )
    assert r.status_code == 200
    assert (
        env.client.delete(f"/v1/vehicles/{env.beta.vin}", headers=env.beta.h("admin")).status_code
        == 204
    )
    for vin, brand in ((na_vin(500), "alpha"), (env.beta.vin, "beta")):
        made = env.client.post("/v1/vehicles", json={"vin": vin, "brand": brand}, headers=env.g)
        assert made.status_code == 201, made.text
        twin = env.client.get(f"/v1/vehicles/{vin}/twin", headers=env.g).json()
        assert (twin["reported"], twin["desired"], twin["online"]) == ({}, {}, False), twin
        history = env.client.get(
            f"/v1/vehicles/{vin}/history", params={"signals": SPEED, "since": "1d"}, headers=env.g
        ).json()
        assert history["points"] == []
    # The re-registered VIN starts afresh: sequence 1 of session s1 is new again.
    batch = env.ingest(telemetry(env.beta.vin, 1, NOW - 1_000, {SPEED: 5.0}))
    assert batch.out.dead_letters == []
    twin = env.client.get(f"/v1/vehicles/{env.beta.vin}/twin", headers=env.g).json()
    assert twin["reported"][SPEED]["value"] == 5.0
