"""Webhook subscriptions, their outbox and delivery log (store), and the HTTP sender.

Adapters: `adapters/sql/webhooks.py` (SQLite and PostgreSQL) and `adapters/webhook_http.py`
(httpx). Contract tests: `tests/contract/test_webhooks_contract.py`.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class Webhook:
    id: int
    brand: str
    url: str
    kinds: tuple[str, ...]
    secret: str
    created_by: str
    created_ms: int


@dataclass(frozen=True, slots=True)
class NewDelivery:
    """One event for one subscription, stored before its first attempt."""

    webhook_id: int
    brand: str
    event_id: str
    kind: str
    vin: str
    body: str
    created_ms: int


@dataclass(frozen=True, slots=True)
class Delivery:
    id: int
    webhook_id: int
    brand: str
    event_id: str
    kind: str
    vin: str
    body: str
    status: str  # pending, delivered, dead
    attempts: int
    next_attempt_ms: int
    created_ms: int
    completed_ms: int | None
    last_status_code: int | None
    last_error: str | None


@dataclass(frozen=True, slots=True)
class Attempt:
    """One try: the HTTP status (None when no answer), the error, how long it took."""

    attempt: int
    at_ms: int
    status_code: int | None
    error: str | None
    duration_ms: int


class WebhookStore(Protocol):
    def add_webhook(
        self, brand: str, url: str, kinds: Sequence[str], secret: str, by: str, now_ms: int
    ) -> Webhook: ...
    def webhooks(self, scope: str | None) -> list[Webhook]: ...
    def webhook(self, webhook_id: int) -> Webhook | None: ...
    def delete_webhook(self, webhook_id: int) -> bool: ...
    def enqueue(self, deliveries: Sequence[NewDelivery]) -> None: ...
    def due(self, now_ms: int, limit: int) -> list[Delivery]: ...
    def claim(self, delivery_id: int, seen_next_ms: int, lease_until_ms: int) -> bool:
        """Take a due delivery for one attempt (False if another worker took it)."""
        ...

    def record(
        self, delivery_id: int, attempt: Attempt, status: str, next_attempt_ms: int
    ) -> None: ...
    def delivery(self, delivery_id: int) -> Delivery | None: ...
    def deliveries(
        self,
        scope: str | None,
        *,
        webhook_id: int | None,
        status: str | None,
        before: int,
        limit: int,
    ) -> list[Delivery]:
        """Newest first, ids below `before`."""
        ...

    def attempts(self, delivery_id: int) -> list[Attempt]: ...
    def redeliver(self, delivery_id: int, now_ms: int) -> bool:
        """Put a dead delivery back in the outbox for a new round of attempts."""
        ...


@dataclass(frozen=True, slots=True)
class Outcome:
    status_code: int | None
    error: str | None
    duration_ms: int


class WebhookSender(Protocol):
    def post(self, url: str, body: bytes, headers: Mapping[str, str]) -> Outcome: ...
    def addresses(self, host: str) -> list[str]:
        """The IP addresses `host` resolves to (raises OSError when it does not)."""
        ...

    def close(self) -> None: ...
