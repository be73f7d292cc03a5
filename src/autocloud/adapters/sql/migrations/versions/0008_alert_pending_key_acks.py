"""alert_pending (alert waits survive a restart) and key_list_acks (what cars confirmed)

Revision ID: 0008
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "alert_pending",
        sa.Column("rule_id", sa.Integer(), nullable=False),
        sa.Column("vehicle_id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=300), nullable=False),
        sa.Column("since_ts", sa.BigInteger(), nullable=False),
        sa.Column("last_ts", sa.BigInteger(), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["rule_id"],
            ["alert_rules.id"],
            name=op.f("fk_alert_pending_rule_id_alert_rules"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["vehicle_id"],
            ["vehicles.id"],
            name=op.f("fk_alert_pending_vehicle_id_vehicles"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("rule_id", "vehicle_id", "key", name=op.f("pk_alert_pending")),
    )
    with op.batch_alter_table("alert_pending", schema=None) as batch_op:
        batch_op.create_index("ix_alert_pending_vehicle", ["vehicle_id"], unique=False)

    op.create_table(
        "key_list_acks",
        sa.Column("vehicle_id", sa.Integer(), nullable=False),
        sa.Column("applied_serial", sa.BigInteger(), nullable=True),
        sa.Column("applied_ts", sa.BigInteger(), nullable=True),
        sa.Column("applied_ms", sa.BigInteger(), nullable=True),
        sa.Column("refused_serial", sa.BigInteger(), nullable=True),
        sa.Column("refused_reason", sa.String(length=500), nullable=True),
        sa.Column("refused_ts", sa.BigInteger(), nullable=True),
        sa.Column("refused_ms", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(
            ["vehicle_id"],
            ["vehicles.id"],
            name=op.f("fk_key_list_acks_vehicle_id_vehicles"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("vehicle_id", name=op.f("pk_key_list_acks")),
    )


def downgrade() -> None:
    op.drop_table("key_list_acks")
    with op.batch_alter_table("alert_pending", schema=None) as batch_op:
        batch_op.drop_index("ix_alert_pending_vehicle")
    op.drop_table("alert_pending")
