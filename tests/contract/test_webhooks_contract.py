"""The webhook store on SQLite and PostgreSQL: subscriptions, outbox, log, dead letters."""

import pytest

from autocloud.adapters.sql.store import SqlStore
from autocloud.domain.errors import NotFound
from autocloud.ports.webhooks import Attempt, NewDelivery
from tests.contract.helpers import T0


def hook(store: SqlStore, brand: str = "vw", kinds: tuple[str, ...] = ("alert", "dtc")) -> int:
    made = store.webhooks.add_webhook(brand, "https://h.example/x", kinds, "whsec_s", "ops", T0)
    return made.id


def new(webhook_id: int, n: int, brand: str = "vw", at: int = T0) -> NewDelivery:
    return NewDelivery(webhook_id, brand, f"evt_{n}", "alert", "VIN", f'{{"n":{n}}}', at)


def test_subscriptions_round_trip_per_brand(brands: SqlStore) -> None:
    a, b = hook(brands), hook(brands, "seat", ("diag",))
    got = brands.webhooks.webhook(a)
    assert got is not None
    assert (got.brand, got.url, got.kinds, got.secret, got.created_by) == (
        "vw",
        "https://h.example/x",
        ("alert", "dtc"),
        "whsec_s",
        "ops",
    )
    assert [w.id for w in brands.webhooks.webhooks("seat")] == [b]
    assert [w.id for w in brands.webhooks.webhooks(None)] == [a, b]
    assert brands.webhooks.delete_webhook(a)
    assert not brands.webhooks.delete_webhook(a)
    assert brands.webhooks.webhook(a) is None


def test_outbox_due_claim_and_record(brands: SqlStore) -> None:
    w = hook(brands)
    brands.webhooks.enqueue([new(w, 1), new(w, 2, at=T0 + 10)])
    due = brands.webhooks.due(T0 + 5, 10)
    assert [d.event_id for d in due] == ["evt_1"]
    first = due[0]
    assert (first.status, first.attempts, first.body) == ("pending", 0, '{"n":1}')
    assert brands.webhooks.claim(first.id, first.next_attempt_ms, T0 + 60_000)
    assert not brands.webhooks.claim(first.id, first.next_attempt_ms, T0 + 60_000)  # taken
    assert [d.event_id for d in brands.webhooks.due(T0 + 20, 10)] == ["evt_2"]  # leased
    brands.webhooks.record(first.id, Attempt(1, T0 + 6, 500, "HTTP 500", 12), "pending", T0 + 100)
    brands.webhooks.record(first.id, Attempt(2, T0 + 100, 200, None, 8), "delivered", T0 + 100)
    done = brands.webhooks.delivery(first.id)
    assert done is not None
    assert (done.status, done.attempts, done.last_status_code, done.completed_ms) == (
        "delivered",
        2,
        200,
        T0 + 100,
    )
    assert brands.webhooks.attempts(first.id) == [
        Attempt(1, T0 + 6, 500, "HTTP 500", 12),
        Attempt(2, T0 + 100, 200, None, 8),
    ]


def test_dead_letters_are_listed_and_redelivered(brands: SqlStore) -> None:
    w, other = hook(brands), hook(brands, "seat")
    brands.webhooks.enqueue([new(w, 1), new(w, 2), new(other, 3, "seat")])
    d1, d2, d3 = (d.id for d in brands.webhooks.due(T0, 10))
    brands.webhooks.record(d1, Attempt(1, T0, None, "refused", 1), "dead", T0)
    dead = brands.webhooks.deliveries(
        "vw", webhook_id=None, status="dead", before=2**31 - 1, limit=9
    )
    assert [d.id for d in dead] == [d1]
    assert brands.webhooks.redeliver(d1, T0 + 50)
    again = brands.webhooks.delivery(d1)
    assert again is not None
    assert (again.status, again.attempts, again.next_attempt_ms) == ("pending", 0, T0 + 50)
    assert not brands.webhooks.redeliver(d2, T0)  # not dead
    with pytest.raises(NotFound):
        brands.webhooks.redeliver(999_999, T0)
    # Newest first, per brand, per webhook, with a cursor.
    everything = brands.webhooks.deliveries(
        None, webhook_id=None, status=None, before=2**31 - 1, limit=9
    )
    assert [d.id for d in everything] == [d3, d2, d1]
    assert [
        d.id
        for d in brands.webhooks.deliveries("vw", webhook_id=w, status=None, before=d2, limit=9)
    ] == [d1]
    assert (
        brands.webhooks.deliveries("seat", webhook_id=w, status=None, before=2**31 - 1, limit=9)
        == []
    )


def test_deleting_a_webhook_deletes_its_outbox_and_log(brands: SqlStore) -> None:
    w = hook(brands)
    brands.webhooks.enqueue([new(w, 1)])
    (d,) = brands.webhooks.due(T0, 10)
    brands.webhooks.record(d.id, Attempt(1, T0, 503, "busy", 3), "pending", T0 + 1)
    brands.webhooks.delete_webhook(w)
    assert brands.webhooks.delivery(d.id) is None
    assert brands.webhooks.attempts(d.id) == []
