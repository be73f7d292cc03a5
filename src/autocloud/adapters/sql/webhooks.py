"""Webhook subscriptions, outbox and delivery log in SQL (the `WebhookStore` port)."""

import json
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Engine, Row, delete, select, update

from autocloud.adapters.sql.dialect import Dialect
from autocloud.adapters.sql.errors import translated
from autocloud.adapters.sql.schema_webhooks import (
    webhook_attempts,
    webhook_deliveries,
    webhooks,
)
from autocloud.domain.errors import NotFound
from autocloud.ports.webhooks import Attempt, Delivery, NewDelivery, Webhook


def _webhook(row: Row[Any]) -> Webhook:
    return Webhook(
        row.id,
        row.brand_id,
        row.url,
        tuple(json.loads(row.kinds)),
        row.secret,
        row.created_by,
        row.created_ms,
    )


def _delivery(row: Row[Any]) -> Delivery:
    return Delivery(
        id=row.id,
        webhook_id=row.webhook_id,
        brand=row.brand_id,
        event_id=row.event_id,
        kind=row.kind,
        vin=row.vin,
        body=row.body,
        status=row.status,
        attempts=row.attempts,
        next_attempt_ms=row.next_attempt_ms,
        created_ms=row.created_ms,
        completed_ms=row.completed_ms,
        last_status_code=row.last_status_code,
        last_error=row.last_error,
    )


class SqlWebhooks:
    """The `WebhookStore` port on any SQLAlchemy engine."""

    def __init__(self, engine: Engine, dialect: Dialect) -> None:
        self._engine = engine
        self._dialect = dialect

    # --- subscriptions ----------------------------------------------------------------------
    def add_webhook(
        self, brand: str, url: str, kinds: Sequence[str], secret: str, by: str, now_ms: int
    ) -> Webhook:
        values = {
            "brand_id": brand,
            "url": url,
            "kinds": json.dumps(list(kinds)),
            "secret": secret,
            "created_by": by,
            "created_ms": now_ms,
        }
        with translated(), self._engine.begin() as conn:
            key = conn.execute(webhooks.insert().values(**values)).inserted_primary_key
        assert key is not None
        return Webhook(int(key[0]), brand, url, tuple(kinds), secret, by, now_ms)

    def webhooks(self, scope: str | None) -> list[Webhook]:
        query = select(webhooks).order_by(webhooks.c.id)
        if scope is not None:
            query = query.where(webhooks.c.brand_id == scope)
        with translated(), self._engine.connect() as conn:
            return [_webhook(r) for r in conn.execute(query)]

    def webhook(self, webhook_id: int) -> Webhook | None:
        with translated(), self._engine.connect() as conn:
            row = conn.execute(select(webhooks).where(webhooks.c.id == webhook_id)).first()
        return _webhook(row) if row is not None else None

    def delete_webhook(self, webhook_id: int) -> bool:
        with translated(), self._engine.begin() as conn:
            return conn.execute(delete(webhooks).where(webhooks.c.id == webhook_id)).rowcount == 1

    # --- outbox -----------------------------------------------------------------------------
    def enqueue(self, deliveries: Sequence[NewDelivery]) -> None:
        rows = [
            {
                "webhook_id": d.webhook_id,
                "brand_id": d.brand,
                "event_id": d.event_id,
                "kind": d.kind,
                "vin": d.vin,
                "body": d.body,
                "status": "pending",
                "attempts": 0,
                "next_attempt_ms": d.created_ms,
                "created_ms": d.created_ms,
            }
            for d in deliveries
        ]
        if rows:
            with translated(), self._engine.begin() as conn:
                conn.execute(webhook_deliveries.insert(), rows)

    def due(self, now_ms: int, limit: int) -> list[Delivery]:
        query = (
            select(webhook_deliveries)
            .where(
                webhook_deliveries.c.status == "pending",
                webhook_deliveries.c.next_attempt_ms <= now_ms,
            )
            .order_by(webhook_deliveries.c.next_attempt_ms, webhook_deliveries.c.id)
            .limit(limit)
        )
        with translated(), self._engine.connect() as conn:
            return [_delivery(r) for r in conn.execute(query)]

    def claim(self, delivery_id: int, seen_next_ms: int, lease_until_ms: int) -> bool:
        statement = (
            update(webhook_deliveries)
            .where(
                webhook_deliveries.c.id == delivery_id,
                webhook_deliveries.c.status == "pending",
                webhook_deliveries.c.next_attempt_ms == seen_next_ms,
            )
            .values(next_attempt_ms=lease_until_ms)
        )
        with translated(), self._engine.begin() as conn:
            return conn.execute(statement).rowcount == 1

    def record(self, delivery_id: int, attempt: Attempt, status: str, next_attempt_ms: int) -> None:
        with translated(), self._engine.begin() as conn:
            conn.execute(
                webhook_attempts.insert().values(
                    delivery_id=delivery_id,
                    attempt=attempt.attempt,
                    at_ms=attempt.at_ms,
                    status_code=attempt.status_code,
                    error=attempt.error,
                    duration_ms=attempt.duration_ms,
                )
            )
            conn.execute(
                update(webhook_deliveries)
                .where(webhook_deliveries.c.id == delivery_id)
                .values(
                    status=status,
                    attempts=attempt.attempt,
                    next_attempt_ms=next_attempt_ms,
                    completed_ms=attempt.at_ms if status != "pending" else None,
                    last_status_code=attempt.status_code,
                    last_error=attempt.error,
                )
            )

    # --- log --------------------------------------------------------------------------------
    def delivery(self, delivery_id: int) -> Delivery | None:
        query = select(webhook_deliveries).where(webhook_deliveries.c.id == delivery_id)
        with translated(), self._engine.connect() as conn:
            row = conn.execute(query).first()
        return _delivery(row) if row is not None else None

    def deliveries(
        self,
        scope: str | None,
        *,
        webhook_id: int | None,
        status: str | None,
        before: int,
        limit: int,
    ) -> list[Delivery]:
        d = webhook_deliveries.c
        query = select(webhook_deliveries).where(d.id < before)
        if scope is not None:
            query = query.where(d.brand_id == scope)
        if webhook_id is not None:
            query = query.where(d.webhook_id == webhook_id)
        if status is not None:
            query = query.where(d.status == status)
        query = query.order_by(d.id.desc()).limit(limit)
        with translated(), self._engine.connect() as conn:
            return [_delivery(r) for r in conn.execute(query)]

    def attempts(self, delivery_id: int) -> list[Attempt]:
        a = webhook_attempts.c
        query = select(webhook_attempts).where(a.delivery_id == delivery_id).order_by(a.id)
        with translated(), self._engine.connect() as conn:
            return [
                Attempt(r.attempt, r.at_ms, r.status_code, r.error, r.duration_ms)
                for r in conn.execute(query)
            ]

    def redeliver(self, delivery_id: int, now_ms: int) -> bool:
        statement = (
            update(webhook_deliveries)
            .where(webhook_deliveries.c.id == delivery_id, webhook_deliveries.c.status == "dead")
            .values(status="pending", attempts=0, next_attempt_ms=now_ms, completed_ms=None)
        )
        with translated(), self._engine.begin() as conn:
            if conn.execute(statement).rowcount == 1:
                return True
        if self.delivery(delivery_id) is None:
            raise NotFound(f"delivery {delivery_id} not found")
        return False
