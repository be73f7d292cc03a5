"""Tables of webhook subscriptions and their durable outbox; migration 0005 creates them.

A delivery row is written before its first attempt (the outbox), so a restart resumes it;
every attempt is logged with its status code, error and duration. A delivery that used up
its attempts is `dead` and stays listed until re-delivered through the API.
"""

from sqlalchemy import BigInteger, Column, ForeignKey, Index, Integer, String, Table, Text

from autocloud.adapters.sql.schema import metadata

webhooks = Table(
    "webhooks",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("brand_id", String(64), ForeignKey("brands.id"), nullable=False),
    Column("url", Text, nullable=False),
    Column("kinds", Text, nullable=False),  # JSON list of event kinds
    Column("secret", String(100), nullable=False),  # needed to sign: kept, never shown again
    Column("created_by", String(200), nullable=False),
    Column("created_ms", BigInteger, nullable=False),
    Index("ix_webhooks_brand", "brand_id", "id"),
    sqlite_autoincrement=True,
)

webhook_deliveries = Table(
    "webhook_deliveries",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("webhook_id", Integer, ForeignKey("webhooks.id", ondelete="CASCADE"), nullable=False),
    Column("brand_id", String(64), nullable=False),
    Column("event_id", String(40), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("vin", String(64), nullable=False),
    Column("body", Text, nullable=False),  # the exact JSON that is signed and sent
    Column("status", String(16), nullable=False),  # pending, delivered, dead
    Column("attempts", Integer, nullable=False),
    Column("next_attempt_ms", BigInteger, nullable=False),
    Column("created_ms", BigInteger, nullable=False),
    Column("completed_ms", BigInteger),
    Column("last_status_code", Integer),
    Column("last_error", Text),
    Index("ix_webhook_deliveries_due", "status", "next_attempt_ms"),
    Index("ix_webhook_deliveries_brand", "brand_id", "id"),
    Index("ix_webhook_deliveries_webhook", "webhook_id", "id"),
    sqlite_autoincrement=True,
)

webhook_attempts = Table(
    "webhook_attempts",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column(
        "delivery_id",
        Integer,
        ForeignKey("webhook_deliveries.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("attempt", Integer, nullable=False),
    Column("at_ms", BigInteger, nullable=False),
    Column("status_code", Integer),
    Column("error", Text),
    Column("duration_ms", Integer, nullable=False),
    Index("ix_webhook_attempts_delivery", "delivery_id", "id"),
    sqlite_autoincrement=True,
)
