"""Webhook subscriptions per brand, their delivery log, dead letters and re-delivery."""

import json
from typing import Annotated, Any

from fastapi import APIRouter, Query, Response, status
from pydantic import BaseModel, Field

from autocloud.bootstrap import Platform
from autocloud.domain.errors import StoreUnavailable
from autocloud.entrypoints.api.deps import Plat, Who
from autocloud.entrypoints.api.schemas import PageOut
from autocloud.ports.webhooks import Attempt, Delivery, Webhook
from autocloud.services.webhooks import KINDS, WebhookService

router = APIRouter(prefix="/v1")
LimitQ = Annotated[int, Query(ge=1, le=1000)]


class WebhookIn(BaseModel):
    url: str = Field(examples=["https://example.com/autocloud"], max_length=2000)
    events: list[str] = Field(examples=[["alert", "dtc"]], description=f"Some of {KINDS}.")
    brand: str | None = Field(None, description="Whose events; a brand token's own by default.")


class WebhookOut(BaseModel):
    id: int
    brand: str
    url: str
    events: list[str]
    created_by: str
    created_ms: int

    @classmethod
    def of(cls, w: Webhook) -> "WebhookOut":
        return cls(
            id=w.id,
            brand=w.brand,
            url=w.url,
            events=list(w.kinds),
            created_by=w.created_by,
            created_ms=w.created_ms,
        )


class NewWebhookOut(WebhookOut):
    secret: str = Field(description="The signing secret, shown only in this response.")


class AttemptOut(BaseModel):
    attempt: int
    at_ms: int
    status_code: int | None
    error: str | None
    duration_ms: int

    @classmethod
    def of(cls, a: Attempt) -> "AttemptOut":
        return cls(
            attempt=a.attempt,
            at_ms=a.at_ms,
            status_code=a.status_code,
            error=a.error,
            duration_ms=a.duration_ms,
        )


class DeliveryOut(BaseModel):
    id: int
    webhook_id: int
    brand: str
    event_id: str
    event: str
    vin: str
    status: str = Field(description="pending, delivered or dead (gave up: re-deliver it)")
    attempts: int
    next_attempt_ms: int | None
    created_ms: int
    completed_ms: int | None
    last_status_code: int | None
    last_error: str | None
    payload: dict[str, Any]
    log: list[AttemptOut] | None = None

    @classmethod
    def of(cls, d: Delivery, attempts: list[Attempt] | None = None) -> "DeliveryOut":
        return cls(
            id=d.id,
            webhook_id=d.webhook_id,
            brand=d.brand,
            event_id=d.event_id,
            event=d.kind,
            vin=d.vin,
            status=d.status,
            attempts=d.attempts,
            next_attempt_ms=d.next_attempt_ms if d.status == "pending" else None,
            created_ms=d.created_ms,
            completed_ms=d.completed_ms,
            last_status_code=d.last_status_code,
            last_error=d.last_error,
            payload=json.loads(d.body),
            log=[AttemptOut.of(a) for a in attempts] if attempts is not None else None,
        )


def _svc(p: Platform) -> WebhookService:
    if p.webhooks is None:
        raise StoreUnavailable("webhooks are not wired in this process")
    return p.webhooks


@router.post("/webhooks", status_code=status.HTTP_201_CREATED, tags=["webhooks"])
def add_webhook(body: WebhookIn, who: Who, p: Plat) -> NewWebhookOut:
    """Subscribe a URL to a brand's events (admin). The secret is shown only here."""
    made, secret = _svc(p).add(who, body.url, body.events, body.brand)
    return NewWebhookOut(**WebhookOut.of(made).model_dump(), secret=secret)


@router.get("/webhooks", tags=["webhooks"])
def list_webhooks(who: Who, p: Plat, brand: str | None = None) -> PageOut[WebhookOut]:
    return PageOut(items=[WebhookOut.of(w) for w in _svc(p).webhooks(who, brand)], next=None)


@router.get("/webhooks/{webhook_id}", tags=["webhooks"])
def get_webhook(webhook_id: int, who: Who, p: Plat) -> WebhookOut:
    return WebhookOut.of(_svc(p).webhook(who, webhook_id))


@router.delete("/webhooks/{webhook_id}", status_code=status.HTTP_204_NO_CONTENT, tags=["webhooks"])
def delete_webhook(webhook_id: int, who: Who, p: Plat) -> Response:
    """Unsubscribe (admin); its pending deliveries and log go with it."""
    _svc(p).remove(who, webhook_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/webhook-deliveries", tags=["webhooks"])
def list_deliveries(
    who: Who,
    p: Plat,
    webhook_id: int | None = None,
    status: str | None = Query(None, description="pending, delivered or dead"),
    brand: str | None = None,
    cursor: str | None = None,
    limit: LimitQ = 100,
) -> PageOut[DeliveryOut]:
    """The delivery log, newest first; `status=dead` is the dead-letter list."""
    page = _svc(p).deliveries(
        who, webhook_id=webhook_id, status=status, brand=brand, cursor=cursor, limit=limit
    )
    return PageOut(items=[DeliveryOut.of(d) for d in page.items], next=page.next)


@router.get("/webhook-deliveries/{delivery_id}", tags=["webhooks"])
def get_delivery(delivery_id: int, who: Who, p: Plat) -> DeliveryOut:
    """One delivery with every attempt (status code, error, duration)."""
    found, attempts = _svc(p).delivery(who, delivery_id)
    return DeliveryOut.of(found, attempts)


@router.post("/webhook-deliveries/{delivery_id}/redeliver", tags=["webhooks"])
def redeliver(delivery_id: int, who: Who, p: Plat) -> DeliveryOut:
    """Put a dead delivery back in the outbox (same event id and body, fresh signature)."""
    return DeliveryOut.of(_svc(p).redeliver(who, delivery_id))
