"""Tables of diagnostics and alerts: active DTCs, their history, alert rules and alerts.

On the shared `metadata` (adapters/sql/schema.py); migration 0003 creates them (0007 the
pending waits). Each alert row is one episode of one rule on one vehicle: the partial unique
index lets at most one of them be open or acknowledged at a time, so duplicates are refused
by the database too.
"""

from sqlalchemy import BigInteger, Column, ForeignKey, Index, Integer, String, Table, Text, text

from autocloud.adapters.sql.schema import metadata

dtc_active = Table(
    "dtc_active",
    metadata,
    Column("vehicle_id", Integer, ForeignKey("vehicles.id", ondelete="CASCADE"), primary_key=True),
    Column("code", String(8), primary_key=True),
    Column("since_ms", BigInteger, nullable=False),  # vehicle time it was raised
    Column("last_seen_ms", BigInteger, nullable=False),  # vehicle time of the newest report
    Column("freeze_frame", Text),  # JSON object, when an event carried one
    Column("source", String(8), nullable=False),  # event | list
    Column("received_ms", BigInteger, nullable=False),
    Index("ix_dtc_active_code", "code"),
)

dtc_history = Table(
    "dtc_history",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("vehicle_id", Integer, ForeignKey("vehicles.id", ondelete="CASCADE"), nullable=False),
    Column("code", String(8), nullable=False),
    Column("raised", Integer, nullable=False),  # 1 raised, 0 cleared
    Column("ts", BigInteger, nullable=False),
    Column("source", String(8), nullable=False),
    Column("freeze_frame", Text),
    Column("received_ms", BigInteger, nullable=False),
    Index("ix_dtc_history_vehicle_ts", "vehicle_id", "ts"),
    sqlite_autoincrement=True,
)

alert_rules = Table(
    "alert_rules",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("brand_id", String(64), ForeignKey("brands.id"), nullable=False),
    Column("name", String(200), nullable=False),
    Column("severity", String(16), nullable=False),
    Column("spec", Text, nullable=False),  # JSON: {"signal": {...}} or {"event": {...}}
    Column("created_ms", BigInteger, nullable=False),
    Column("created_by", String(200), nullable=False),
    Index("ix_alert_rules_brand", "brand_id", "id"),
    sqlite_autoincrement=True,
)

_ACTIVE = text("state <> 'resolved'")

alerts = Table(
    "alerts",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("rule_id", Integer, nullable=False),  # no FK: alerts outlive a deleted rule
    Column("rule_name", String(200), nullable=False),
    Column("brand_id", String(64), nullable=False),
    Column("vehicle_id", Integer, ForeignKey("vehicles.id", ondelete="CASCADE"), nullable=False),
    Column("severity", String(16), nullable=False),
    Column("state", String(16), nullable=False),  # open | acknowledged | resolved
    Column("key", String(300), nullable=False),  # the signal path that fired, "" for events
    Column("value", Text, nullable=False),  # JSON
    Column("detail", Text, nullable=False),
    Column("opened_ts", BigInteger, nullable=False),
    Column("opened_ms", BigInteger, nullable=False),
    Column("acked_ms", BigInteger),
    Column("acked_by", String(200)),
    Column("resolved_ts", BigInteger),
    Column("resolved_ms", BigInteger),
    Column("resolved_reason", String(200)),
    Index("ix_alerts_brand", "brand_id", "id"),
    Index("ix_alerts_vehicle", "vehicle_id", "id"),
    Index(
        "uq_alerts_active",
        "rule_id",
        "vehicle_id",
        unique=True,
        sqlite_where=_ACTIVE,
        postgresql_where=_ACTIVE,
    ),
    sqlite_autoincrement=True,
)

# One row per wait under way: a signal rule's condition holding on a vehicle, not yet for
# `for_s` (migration 0007). Written in the ingest transaction when a wait starts or ends,
# read at start, so a restart resumes the wait in vehicle time.
alert_pending = Table(
    "alert_pending",
    metadata,
    Column("rule_id", Integer, ForeignKey("alert_rules.id", ondelete="CASCADE"), primary_key=True),
    Column("vehicle_id", Integer, ForeignKey("vehicles.id", ondelete="CASCADE"), primary_key=True),
    Column("key", String(300), primary_key=True),  # the signal path
    Column("since_ts", BigInteger, nullable=False),  # vehicle time the condition began holding
    Column("last_ts", BigInteger, nullable=False),
    Column("value", Text, nullable=False),  # JSON: the value that started the wait
    Index("ix_alert_pending_vehicle", "vehicle_id"),
)
