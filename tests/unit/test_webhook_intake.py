"""The webhook intake matches changes against a cached copy of each brand's webhooks: no read
of the table per change, and a webhook added or removed here applies to the next change."""

import time
from collections.abc import Sequence
from typing import Any

from autocloud.domain.access import Principal, Role
from autocloud.domain.clock import FixedClock
from autocloud.ports.webhooks import NewDelivery, Webhook
from autocloud.services import webhooks as webhooks_module
from autocloud.services.fanout import Change
from autocloud.services.webhooks import RetryPolicy, WebhookService

ADMIN = Principal("admin", Role.ADMIN, None)


class Store:
    """The parts of a WebhookStore the intake and the subscriptions use; counts reads."""

    def __init__(self) -> None:
        self.hooks: list[Webhook] = []
        self.reads = 0
        self.queued: list[NewDelivery] = []

    def add_webhook(
        self, brand: str, url: str, kinds: Sequence[str], secret: str, by: str, now_ms: int
    ) -> Webhook:
        hook = Webhook(len(self.hooks) + 1, brand, url, tuple(kinds), secret, by, now_ms)
        self.hooks.append(hook)
        return hook

    def webhooks(self, scope: str | None) -> list[Webhook]:
        self.reads += 1
        return [h for h in self.hooks if scope is None or h.brand == scope]

    def webhook(self, webhook_id: int) -> Webhook | None:
        return next((h for h in self.hooks if h.id == webhook_id), None)

    def delete_webhook(self, webhook_id: int) -> bool:
        self.hooks = [h for h in self.hooks if h.id != webhook_id]
        return True

    def enqueue(self, deliveries: Sequence[NewDelivery]) -> None:
        self.queued.extend(deliveries)


class Sender:
    def addresses(self, host: str) -> list[str]:
        return ["203.0.113.7"]


def service(store: Store) -> WebhookService:
    policy = RetryPolicy(3, 1.0, 10.0, 5.0, 1, allow_private=True)
    return WebhookService(store, Sender(), FixedClock(1_000), policy)  # type: ignore[arg-type]


def command(brand: str = "acme") -> Change:
    return Change("command", "VIN1", brand, {"id": "c1", "state": "sent"})


def test_changes_without_a_subscriber_read_the_table_once_per_brand_and_ttl(
    monkeypatch: Any,
) -> None:
    store = Store()
    hooks = service(store)
    now = [100.0]
    monkeypatch.setattr(time, "monotonic", lambda: now[0])
    for _ in range(50):
        assert hooks.intake([command(), command("other")]) == 0
    assert store.reads == 2  # one per brand, not one per change
    now[0] += webhooks_module.SUBSCRIBED_TTL_S  # another process may have added one
    hooks.intake([command()])
    assert store.reads == 3


def test_a_webhook_added_or_removed_here_applies_to_the_next_change() -> None:
    store = Store()
    hooks = service(store)
    assert hooks.intake([command()]) == 0
    made, _secret = hooks.add(ADMIN, "https://example.com/hook", ["command"], brand="acme")
    assert hooks.intake([command(), Change("alert", "VIN1", "acme", {})]) == 1
    assert [(d.webhook_id, d.kind) for d in store.queued] == [(made.id, "command")]
    hooks.remove(ADMIN, made.id)
    assert hooks.intake([command()]) == 0
