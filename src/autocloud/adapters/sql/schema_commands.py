"""Tables of remote commands: the commands, vehicles' enrolled keys, counters, the audit log.

Rows of a vehicle go with it (foreign keys with ON DELETE CASCADE), so a VIN registered again
after a delete inherits no commands, keys or counters. The audit log keeps VIN and brand as
text and outlives the vehicle: it is the record of who did what.
"""

from sqlalchemy import (
    BigInteger,
    Column,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from autocloud.adapters.sql.schema import metadata

commands = Table(
    "commands",
    metadata,
    Column("row", Integer, primary_key=True, autoincrement=True),
    Column("id", String(64), nullable=False, unique=True),
    Column("vehicle_id", Integer, ForeignKey("vehicles.id", ondelete="CASCADE"), nullable=False),
    Column("vin", String(17), nullable=False),
    Column("brand_id", String(64), nullable=False),
    Column("name", String(64), nullable=False),
    Column("params", Text, nullable=False),  # JSON
    Column("state", String(16), nullable=False),
    Column("reason", Text),
    Column("result", Text),  # JSON data of the vehicle's final answer
    Column("caller", String(200), nullable=False),
    Column("owner_id", Integer),
    Column("idempotency_key", String(200)),
    Column("issued_ms", BigInteger, nullable=False),
    Column("expires_ms", BigInteger, nullable=False),
    Column("counter", BigInteger),
    Column("kid", String(32)),
    Column("sig", String(200)),
    Column("queued_ms", BigInteger, nullable=False),
    Column("sent_ms", BigInteger),
    Column("delivered_ms", BigInteger),
    Column("finished_ms", BigInteger),
    UniqueConstraint("brand_id", "caller", "idempotency_key", name="uq_commands_idempotency"),
    Index("ix_commands_vehicle_state", "vehicle_id", "state"),
    Index("ix_commands_state_expires", "state", "expires_ms"),
    Index("ix_commands_brand_row", "brand_id", "row"),
    sqlite_autoincrement=True,
)

command_keys = Table(
    "command_keys",
    metadata,
    Column(
        "vehicle_id",
        Integer,
        ForeignKey("vehicles.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("kid", String(32), primary_key=True),
    Column("public_key", String(64), nullable=False),  # hex of the 32 raw bytes
    Column("label", String(200), nullable=False),
    Column("owner_id", Integer),
    Column("added_ms", BigInteger, nullable=False),
    Column("added_by", String(200), nullable=False),
)

command_counters = Table(
    "command_counters",
    metadata,
    Column(
        "vehicle_id",
        Integer,
        ForeignKey("vehicles.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("kid", String(32), primary_key=True),
    Column("counter", BigInteger, nullable=False),
)

command_audit = Table(
    "command_audit",
    metadata,
    Column("row", Integer, primary_key=True, autoincrement=True),
    Column("at_ms", BigInteger, nullable=False),
    Column("brand_id", String(64)),
    Column("vin", String(64)),
    Column("command_id", String(64)),
    Column("name", String(64)),
    Column("caller", String(200), nullable=False),
    Column("action", String(32), nullable=False),
    Column("detail", Text, nullable=False),
    Index("ix_command_audit_brand_row", "brand_id", "row"),
    Index("ix_command_audit_vin", "vin", "row"),
    sqlite_autoincrement=True,
)
