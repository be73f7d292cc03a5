"""remote diagnostic sessions (UDS over MQTT)

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "diag_sessions",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("vehicle_id", sa.Integer(), nullable=False),
        sa.Column("brand_id", sa.String(length=64), nullable=False),
        sa.Column("requested_by", sa.String(length=200), nullable=False),
        sa.Column("created_ms", sa.BigInteger(), nullable=False),
        sa.Column("expires_ms", sa.BigInteger(), nullable=False),
        sa.Column("completed_ms", sa.BigInteger(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("ecus", sa.Text(), nullable=False),
        sa.Column("reads", sa.Text(), nullable=False),
        sa.Column("clear_dtcs", sa.Boolean(), nullable=False),
        sa.Column("report", sa.Text(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["vehicle_id"],
            ["vehicles.id"],
            name=op.f("fk_diag_sessions_vehicle_id_vehicles"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_diag_sessions")),
    )
    with op.batch_alter_table("diag_sessions", schema=None) as batch_op:
        batch_op.create_index("ix_diag_sessions_vehicle", ["vehicle_id", "created_ms"])
        batch_op.create_index("ix_diag_sessions_status", ["status", "expires_ms"])

    op.create_table(
        "diag_requests",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("session_id", sa.String(length=32), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("ecu", sa.String(length=32), nullable=False),
        sa.Column("read", sa.String(length=32), nullable=False),
        sa.Column("request", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["session_id"],
            ["diag_sessions.id"],
            name=op.f("fk_diag_requests_session_id_diag_sessions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_diag_requests")),
    )
    with op.batch_alter_table("diag_requests", schema=None) as batch_op:
        batch_op.create_index("ix_diag_requests_session", ["session_id", "position"])

    op.create_table(
        "diag_responses",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("vehicle_id", sa.Integer(), nullable=False),
        sa.Column("request_id", sa.String(length=64), nullable=False),
        sa.Column("ecu", sa.String(length=32), nullable=False),
        sa.Column("response", sa.Text(), nullable=False),
        sa.Column("ts", sa.BigInteger(), nullable=False),
        sa.Column("received_ms", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["vehicle_id"],
            ["vehicles.id"],
            name=op.f("fk_diag_responses_vehicle_id_vehicles"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_diag_responses")),
        sqlite_autoincrement=True,
    )
    with op.batch_alter_table("diag_responses", schema=None) as batch_op:
        batch_op.create_index("ix_diag_responses_request", ["vehicle_id", "request_id"])


def downgrade() -> None:
    op.drop_table("diag_responses")
    op.drop_table("diag_requests")
    op.drop_table("diag_sessions")
