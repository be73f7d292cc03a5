"""remote commands: commands, enrolled keys, counters, audit log; owner-bound API tokens

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def _vehicle_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["vehicle_id"],
        ["vehicles.id"],
        name=op.f(f"fk_{table}_vehicle_id_vehicles"),
        ondelete="CASCADE",
    )


def upgrade() -> None:
    op.create_table(
        "commands",
        sa.Column("row", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("vehicle_id", sa.Integer(), nullable=False),
        sa.Column("vin", sa.String(length=17), nullable=False),
        sa.Column("brand_id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("params", sa.Text(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("result", sa.Text(), nullable=True),
        sa.Column("caller", sa.String(length=200), nullable=False),
        sa.Column("owner_id", sa.Integer(), nullable=True),
        sa.Column("idempotency_key", sa.String(length=200), nullable=True),
        sa.Column("issued_ms", sa.BigInteger(), nullable=False),
        sa.Column("expires_ms", sa.BigInteger(), nullable=False),
        sa.Column("counter", sa.BigInteger(), nullable=True),
        sa.Column("kid", sa.String(length=32), nullable=True),
        sa.Column("sig", sa.String(length=200), nullable=True),
        sa.Column("queued_ms", sa.BigInteger(), nullable=False),
        sa.Column("sent_ms", sa.BigInteger(), nullable=True),
        sa.Column("delivered_ms", sa.BigInteger(), nullable=True),
        sa.Column("finished_ms", sa.BigInteger(), nullable=True),
        _vehicle_fk("commands"),
        sa.PrimaryKeyConstraint("row", name=op.f("pk_commands")),
        sa.UniqueConstraint("id", name=op.f("uq_commands_id")),
        sa.UniqueConstraint(
            "brand_id", "caller", "idempotency_key", name="uq_commands_idempotency"
        ),
        sqlite_autoincrement=True,
    )
    with op.batch_alter_table("commands", schema=None) as batch_op:
        batch_op.create_index("ix_commands_vehicle_state", ["vehicle_id", "state"], unique=False)
        batch_op.create_index("ix_commands_state_expires", ["state", "expires_ms"], unique=False)
        batch_op.create_index("ix_commands_brand_row", ["brand_id", "row"], unique=False)

    op.create_table(
        "command_keys",
        sa.Column("vehicle_id", sa.Integer(), nullable=False),
        sa.Column("kid", sa.String(length=32), nullable=False),
        sa.Column("public_key", sa.String(length=64), nullable=False),
        sa.Column("label", sa.String(length=200), nullable=False),
        sa.Column("owner_id", sa.Integer(), nullable=True),
        sa.Column("added_ms", sa.BigInteger(), nullable=False),
        sa.Column("added_by", sa.String(length=200), nullable=False),
        _vehicle_fk("command_keys"),
        sa.PrimaryKeyConstraint("vehicle_id", "kid", name=op.f("pk_command_keys")),
    )
    op.create_table(
        "command_counters",
        sa.Column("vehicle_id", sa.Integer(), nullable=False),
        sa.Column("kid", sa.String(length=32), nullable=False),
        sa.Column("counter", sa.BigInteger(), nullable=False),
        _vehicle_fk("command_counters"),
        sa.PrimaryKeyConstraint("vehicle_id", "kid", name=op.f("pk_command_counters")),
    )
    op.create_table(
        "command_audit",
        sa.Column("row", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("at_ms", sa.BigInteger(), nullable=False),
        sa.Column("brand_id", sa.String(length=64), nullable=True),
        sa.Column("vin", sa.String(length=64), nullable=True),
        sa.Column("command_id", sa.String(length=64), nullable=True),
        sa.Column("name", sa.String(length=64), nullable=True),
        sa.Column("caller", sa.String(length=200), nullable=False),
        sa.Column("action", sa.String(length=32), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("row", name=op.f("pk_command_audit")),
        sqlite_autoincrement=True,
    )
    with op.batch_alter_table("command_audit", schema=None) as batch_op:
        batch_op.create_index("ix_command_audit_brand_row", ["brand_id", "row"], unique=False)
        batch_op.create_index("ix_command_audit_vin", ["vin", "row"], unique=False)

    with op.batch_alter_table("api_tokens", schema=None) as batch_op:
        batch_op.add_column(sa.Column("owner_id", sa.Integer(), nullable=True))
        batch_op.create_foreign_key(
            op.f("fk_api_tokens_owner_id_owners"),
            "owners",
            ["owner_id"],
            ["id"],
            ondelete="CASCADE",
        )


def downgrade() -> None:
    with op.batch_alter_table("api_tokens", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("fk_api_tokens_owner_id_owners"), type_="foreignkey")
        batch_op.drop_column("owner_id")
    with op.batch_alter_table("command_audit", schema=None) as batch_op:
        batch_op.drop_index("ix_command_audit_vin")
        batch_op.drop_index("ix_command_audit_brand_row")
    op.drop_table("command_audit")
    op.drop_table("command_counters")
    op.drop_table("command_keys")
    with op.batch_alter_table("commands", schema=None) as batch_op:
        batch_op.drop_index("ix_commands_brand_row")
        batch_op.drop_index("ix_commands_state_expires")
        batch_op.drop_index("ix_commands_vehicle_state")
    op.drop_table("commands")
