"""Tables of the state and history database, shared by the SQLite and PostgreSQL adapters.

Vehicles and signal paths get small integer ids so that history rows stay narrow: a
history row is (vehicle, signal, ts, numeric value or JSON text). Migrations in
`migrations/versions` create these tables; nothing creates them by hand.
"""

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.dialects.postgresql import JSONB

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

brands = Table(
    "brands",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("created_ms", BigInteger, nullable=False),
)

vehicles = Table(
    "vehicles",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("vin", String(17), nullable=False, unique=True),
    Column("brand_id", String(64), ForeignKey("brands.id"), nullable=False),
    Column("model", String(200), nullable=False, server_default=""),
    Column("model_year", Integer),
    Column("manufacturer", String(200)),
    Column("secret_digest", String(64), nullable=False),
    Column("created_ms", BigInteger, nullable=False),
    Index("ix_vehicles_brand", "brand_id", "id"),
    sqlite_autoincrement=True,  # ids are never reused after a delete
)

owners = Table(
    "owners",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("brand_id", String(64), ForeignKey("brands.id"), nullable=False),
    Column("name", String(200), nullable=False),
    Column("email", String(320), nullable=False),
    Column("created_ms", BigInteger, nullable=False),
    UniqueConstraint("brand_id", "email", name="uq_owners_brand_email"),
    sqlite_autoincrement=True,  # ids are never reused after a delete
)

vehicle_owners = Table(
    "vehicle_owners",
    metadata,
    Column("vehicle_id", Integer, ForeignKey("vehicles.id", ondelete="CASCADE"), primary_key=True),
    Column("owner_id", Integer, ForeignKey("owners.id", ondelete="CASCADE"), primary_key=True),
)

api_tokens = Table(
    "api_tokens",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(200), nullable=False),
    Column("digest", String(64), nullable=False, unique=True),
    Column("role", String(16), nullable=False),
    Column("brand_id", String(64), ForeignKey("brands.id")),
    Column("created_ms", BigInteger, nullable=False),
    Column("revoked_ms", BigInteger),
    # An owner's token (migration 0002): it may command that owner's vehicles only.
    Column("owner_id", Integer, ForeignKey("owners.id", ondelete="CASCADE")),
    sqlite_autoincrement=True,  # ids are never reused after a delete
)

signals = Table(
    "signals",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("path", String(300), nullable=False, unique=True),
)

# One row per vehicle (migration 0010): `body` holds each signal's latest value keyed by signal
# id, as history's body does; `meta` holds [ts, received_ms] of each; `newest_ts` is the
# largest ts in the row. A write merges bodies (JSON patch), so a message costs one row write,
# not one per signal; a write older than `newest_ts` is merged signal by signal instead
# (adapters/sql/twin_rows.py), so no signal ever moves back in time.
twin = Table(
    "twin",
    metadata,
    Column("vehicle_id", Integer, primary_key=True, autoincrement=False),
    Column("body", Text().with_variant(JSONB(), "postgresql"), nullable=False),
    Column("meta", Text().with_variant(JSONB(), "postgresql"), nullable=False),
    Column("newest_ts", BigInteger, nullable=False),
)

presence = Table(
    "presence",
    metadata,
    Column("vehicle_id", Integer, primary_key=True),
    Column("online", Boolean, nullable=False),
    Column("since_ms", BigInteger, nullable=False),
    Column("sid", String(64)),
)

desired = Table(
    "desired",
    metadata,
    Column("vehicle_id", Integer, primary_key=True),
    Column("signal_id", Integer, primary_key=True),
    Column("value", Text, nullable=False),  # JSON
    Column("set_ms", BigInteger, nullable=False),
    Column("set_by", String(200), nullable=False),
)

# One row per vehicle and sample instant, holding every signal of that sample as a JSON
# object keyed by signal id ({"17": 42.5, "3": true}). A row per signal would dirty one
# B-tree page per signal and vehicle in every ingest commit; a row per sample dirties one
# per vehicle. On SQLite it is a rowid table whose key is a unique index, as a PostgreSQL heap
# is: rows append in arrival order instead of into the middle of a table that grows by every
# message (migration 0011; docs/architecture.md, "History layout").
history = Table(
    "history",
    metadata,
    Column("vehicle_id", Integer, primary_key=True),
    Column("ts", BigInteger, primary_key=True),
    Column("body", Text().with_variant(JSONB(), "postgresql"), nullable=False),
)

events = Table(
    "events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("vehicle_id", Integer, nullable=False),
    Column("ts", BigInteger, nullable=False),
    Column("type", String(100), nullable=False),
    Column("data", Text, nullable=False),  # JSON
    Column("received_ms", BigInteger, nullable=False),
    Index("ix_events_vehicle_ts", "vehicle_id", "ts"),
    sqlite_autoincrement=True,  # ids are never reused after a delete
)

seq_windows = Table(
    "seq_windows",
    metadata,
    Column("vehicle_id", Integer, primary_key=True),
    Column("sid", String(64), primary_key=True),
    Column("top", BigInteger, nullable=False),
    Column("bits", LargeBinary, nullable=False),
    Column("updated_ms", BigInteger, nullable=False),
)

dead_letters = Table(
    "dead_letters",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("received_ms", BigInteger, nullable=False),
    Column("vin", String(64)),
    Column("brand_id", String(64)),
    Column("topic", String(300), nullable=False),
    Column("reason", String(40), nullable=False),
    Column("detail", Text, nullable=False),
    Column("payload", LargeBinary, nullable=False),
    Index("ix_dead_letters_brand_id", "brand_id", "id"),
    Index("ix_dead_letters_received", "received_ms"),
    sqlite_autoincrement=True,  # ids are never reused after a delete
)
