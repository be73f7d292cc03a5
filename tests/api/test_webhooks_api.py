"""Webhooks through the API against a real receiver on 127.0.0.1: signed deliveries,
retries, dead letters, re-delivery, the durable outbox across a restart, and tenancy."""

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from autocloud.bootstrap import build
from autocloud.domain import webhook_signing as signing
from autocloud.entrypoints.api.app import create_app
from autocloud.services.fanout import Change
from autocloud.settings import load_settings
from tests.api.conftest import Env, TestClient, _tenant, eu_vin, na_vin
from tests.support.vehicle import eventually


@dataclass
class Receiver:
    """An HTTP endpoint that checks signatures and answers from a script of status codes."""

    script: list[int] = field(default_factory=list)  # statuses for the next calls; then 200
    secret: str = ""
    received: list[dict[str, Any]] = field(default_factory=list)
    server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def handle(self, headers: dict[str, str], body: bytes) -> int:
        try:
            stamp = signing.verify(self.secret, headers.get(signing.HEADER), body, int(time.time()))
            verified = True
        except signing.BadSignature:
            stamp, verified = 0, False
        status = self.script.pop(0) if self.script else 200
        self.received.append(
            {
                "headers": headers,
                "body": json.loads(body),
                "verified": verified,
                "t": stamp,
                "status": status,
            }
        )
        return status if verified else 400


def _serve(receiver: Receiver) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            status = receiver.handle(dict(self.headers), body)
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    found = Receiver()
    found.server = _serve(found)
    yield found
    found.server.shutdown()


def live_env(data_dir: Path, **settings: Any) -> Env:
    """A platform on the real clock (signatures are checked against it), quick retries."""
    merged: dict[str, Any] = {
        "webhook_allow_private": True,
        "webhook_backoff_s": 0.05,
        "webhook_backoff_max_s": 0.2,
        "webhook_max_attempts": 3,
        **settings,
    }
    platform = build(load_settings(data_dir=data_dir, **merged))
    token = platform.ensure_admin_token()
    if token is None:  # a restart on the same data: read it back
        token = (data_dir / "admin-token").read_text().strip()
    from autocloud.domain.errors import Conflict

    try:
        alpha = _tenant(platform, "alpha", "Alpha Motors", na_vin(1), "Arrow", "Alice")
        beta = _tenant(platform, "beta", "Beta Automobiles", eu_vin(2), "Bison", "Bertram")
    except Conflict:
        alpha = beta = None  # type: ignore[assignment]
    return Env(platform, TestClient(create_app(platform)), token, alpha, beta)


@pytest.fixture
def live(tmp_path: Path, clean_environ: None) -> Iterator[Env]:
    env = live_env(tmp_path)
    yield env
    env.client.close()
    env.platform.stop()


def subscribe(env: Env, url: str, events: list[str], role: str = "admin") -> dict[str, Any]:
    r = env.client.post(
        "/v1/webhooks", json={"url": url, "events": events}, headers=env.alpha.h(role)
    )
    assert r.status_code == 201, r.text
    made: dict[str, Any] = r.json()
    return made


def publish(env: Env, kind: str, brand: str = "alpha", **data: Any) -> None:
    vin = env.alpha.vin if brand == "alpha" else env.beta.vin
    env.platform.hub.publish([Change(kind, vin, brand, data)])


def deliveries(env: Env, **params: Any) -> list[dict[str, Any]]:
    r = env.client.get("/v1/webhook-deliveries", params=params, headers=env.alpha.h("operator"))
    assert r.status_code == 200, r.text
    items: list[dict[str, Any]] = r.json()["items"]
    return items


def test_events_are_signed_and_delivered(live: Env, receiver: Receiver) -> None:
    made = subscribe(live, receiver.url, ["alert", "diag"])
    receiver.secret = made["secret"]
    assert made["secret"].startswith("whsec_")
    listed = live.client.get("/v1/webhooks", headers=live.alpha.h("operator")).json()["items"]
    assert "secret" not in listed[0]  # shown once, at creation
    publish(live, "alert", rule="coolant", state="opened")
    publish(live, "dtc", code="P0301")  # not subscribed
    publish(live, "alert", brand="beta", rule="x")  # another tenant's
    eventually(lambda: receiver.received)
    (got,) = receiver.received
    assert got["verified"] and abs(got["t"] - time.time()) < 60
    body = got["body"]
    assert (body["type"], body["brand"], body["vin"], body["data"]) == (
        "alert",
        "alpha",
        live.alpha.vin,
        {"rule": "coolant", "state": "opened"},
    )
    assert got["headers"]["Autocloud-Event"] == "alert"
    assert got["headers"]["Autocloud-Event-Id"] == body["id"]
    (row,) = eventually(lambda: [d for d in deliveries(live) if d["status"] == "delivered"])
    assert (row["attempts"], row["last_status_code"], row["payload"]) == (1, 200, body)


def test_failures_are_retried_with_a_logged_attempt_each(live: Env, receiver: Receiver) -> None:
    receiver.secret = subscribe(live, receiver.url, ["dtc"])["secret"]
    receiver.script = [500, 503]
    publish(live, "dtc", code="P0420")
    (row,) = eventually(lambda: [d for d in deliveries(live) if d["status"] == "delivered"])
    one = live.client.get(f"/v1/webhook-deliveries/{row['id']}", headers=live.alpha.h("viewer"))
    assert one.status_code == 403  # the delivery log shows payloads: operator and up
    one = live.client.get(
        f"/v1/webhook-deliveries/{row['id']}", headers=live.alpha.h("operator")
    ).json()
    assert [(a["attempt"], a["status_code"]) for a in one["log"]] == [
        (1, 500),
        (2, 503),
        (3, 200),
    ]
    assert one["log"][0]["error"].startswith("HTTP 500")
    assert all(a["duration_ms"] >= 0 for a in one["log"])
    ids = {r["body"]["id"] for r in receiver.received}
    assert len(ids) == 1  # the same event id every time: receivers dedupe on it
    stamps = [r["t"] for r in receiver.received]
    assert stamps == sorted(stamps)


def test_after_the_last_try_it_is_dead_until_redelivered(live: Env, receiver: Receiver) -> None:
    receiver.secret = subscribe(live, receiver.url, ["command"])["secret"]
    receiver.script = [500, 500, 500]
    publish(live, "command", id="c1", status="succeeded")
    (dead,) = eventually(lambda: deliveries(live, status="dead"))
    assert (dead["attempts"], dead["last_status_code"]) == (3, 500)
    assert len(receiver.received) == 3
    url = f"/v1/webhook-deliveries/{dead['id']}/redeliver"
    assert live.client.post(url, headers=live.alpha.h("viewer")).status_code == 403
    again = live.client.post(url, headers=live.alpha.h("operator"))
    assert again.status_code == 200, again.text
    assert again.json()["status"] == "pending"
    eventually(lambda: [d for d in deliveries(live) if d["status"] == "delivered"])
    assert receiver.received[-1]["body"]["id"] == dead["event_id"]
    assert live.client.post(url, headers=live.alpha.h("operator")).status_code == 422


def test_an_unreachable_receiver_is_logged_as_an_error(live: Env, receiver: Receiver) -> None:
    assert receiver.server is not None
    url = receiver.url
    receiver.server.shutdown()
    receiver.server.server_close()
    subscribe(live, url, ["alert"])
    publish(live, "alert", rule="r")
    (dead,) = eventually(lambda: deliveries(live, status="dead"))
    assert dead["last_status_code"] is None
    assert "Connect" in dead["last_error"]


def test_the_outbox_survives_a_restart(tmp_path: Path, clean_environ: None) -> None:
    box = Receiver()
    first = live_env(tmp_path, webhook_backoff_s=3600, webhook_backoff_max_s=3600)
    try:
        made = subscribe(first, "http://127.0.0.1:9/hook", ["alert"])  # nobody listens
        publish(first, "alert", rule="kept")
        eventually(lambda: [d for d in deliveries(first) if d["attempts"] == 1])
        alpha = first.alpha
    finally:
        first.client.close()
        first.platform.stop()
    box.server = _serve(box)
    box.secret = made["secret"]
    try:
        second = live_env(tmp_path)
        second.alpha = alpha
        try:
            # Point the subscription at the live receiver, as an operator fixing the URL
            # would (a delete + add would drop the pending delivery with it).
            from sqlalchemy import update

            from autocloud.adapters.sql.schema_webhooks import webhook_deliveries, webhooks

            with second.platform.store.engine.begin() as conn:
                conn.execute(update(webhooks).values(url=box.url))
                conn.execute(update(webhook_deliveries).values(next_attempt_ms=0))
            eventually(lambda: box.received)
            assert box.received[0]["body"]["data"] == {"rule": "kept"}
            assert box.received[0]["verified"]
        finally:
            second.client.close()
            second.platform.stop()
    finally:
        box.server.shutdown()


def test_a_finished_diagnostic_session_is_delivered(live: Env, receiver: Receiver) -> None:
    receiver.secret = subscribe(live, receiver.url, ["diag"])["secret"]
    service = live.platform.diagnostics
    assert service is not None
    sent: list[bytes] = []
    service._send = lambda vin, topic, payload: sent.append(payload)
    who = live.platform.registry.authenticate(live.alpha.tokens["operator"])
    session = service.request(who, live.alpha.vin, ecus=["ECM"], reads=["vin"])
    service.settle(session.id, expired=True)  # the car stays silent
    eventually(lambda: receiver.received)
    body = receiver.received[0]["body"]
    assert (body["type"], body["data"]["id"], body["data"]["status"]) == (
        "diag",
        session.id,
        "incomplete",
    )


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("ftp://127.0.0.1/x", "http:// or https://"),
        ("javascript:alert(1)", "http:// or https://"),
        ("https://user:pw@127.0.0.1/", "credentials"),
    ],
)
def test_bad_urls_are_422(live: Env, url: str, why: str) -> None:
    r = live.client.post(
        "/v1/webhooks", json={"url": url, "events": ["alert"]}, headers=live.alpha.h("admin")
    )
    assert r.status_code == 422
    assert why in r.json()["detail"]


def test_private_addresses_are_refused_by_default(tmp_path: Path, clean_environ: None) -> None:
    env = live_env(tmp_path, webhook_allow_private=False)
    try:
        for url in ("http://127.0.0.1:8080/x", "http://169.254.169.254/latest", "http://[::1]/"):
            r = env.client.post(
                "/v1/webhooks", json={"url": url, "events": ["alert"]}, headers=env.alpha.h()
            )
            assert r.status_code == 422, r.text
            assert "non-public address" in r.json()["detail"]
    finally:
        env.client.close()
        env.platform.stop()


def test_roles_events_and_brands_are_checked(live: Env) -> None:
    body = {"url": "http://127.0.0.1:9/x", "events": ["alert"]}
    assert (
        live.client.post("/v1/webhooks", json=body, headers=live.alpha.h("operator")).status_code
        == 403
    )
    bad = live.client.post(
        "/v1/webhooks", json={**body, "events": ["twin"]}, headers=live.alpha.h()
    )
    assert bad.status_code == 422 and "alert, dtc, command, diag" in bad.json()["detail"]
    group = live.client.post("/v1/webhooks", json=body, headers=live.g)
    assert group.status_code == 422 and "name the brand" in group.json()["detail"]
    ok = live.client.post("/v1/webhooks", json={**body, "brand": "beta"}, headers=live.g)
    assert ok.status_code == 201 and ok.json()["brand"] == "beta"


def test_another_tenants_webhooks_and_deliveries_are_not_found(
    live: Env, receiver: Receiver
) -> None:
    r = live.client.post(
        "/v1/webhooks",
        json={"url": receiver.url, "events": ["alert"]},
        headers=live.beta.h("admin"),
    )
    beta_hook = r.json()["id"]
    publish(live, "alert", brand="beta", rule="r")
    (beta_delivery,) = eventually(
        lambda: live.client.get("/v1/webhook-deliveries", headers=live.beta.h("operator")).json()[
            "items"
        ]
    )
    h = live.alpha.h("admin")
    for method, template in (
        ("GET", "/v1/webhooks/{h}"),
        ("DELETE", "/v1/webhooks/{h}"),
        ("GET", "/v1/webhook-deliveries/{d}"),
        ("POST", "/v1/webhook-deliveries/{d}/redeliver"),
        ("GET", "/v1/webhook-deliveries?webhook_id={h}"),
    ):
        url = template.format(h=beta_hook, d=beta_delivery["id"])
        got = live.client.request(method, url, headers=h)
        ghost = live.client.request(method, template.format(h=999_999, d=999_999), headers=h)
        assert got.status_code == ghost.status_code == 404, (method, url, got.text)
        assert got.json()["detail"] == ghost.json()["detail"].replace(
            "999999", str(beta_hook if "{h}" in template else beta_delivery["id"])
        )
        assert receiver.url not in got.text
    assert live.client.get("/v1/webhooks", headers=h).json()["items"] == []
    assert deliveries(live) == []
    assert live.client.get(f"/v1/webhooks/{beta_hook}", headers=live.g).status_code == 200
