"""twin: drop ix_twin_signal_num

The index on (signal_id, num) had to be rewritten on every twin update whose value moved,
which made the twin upsert about five times as expensive on SQLite (measured in
BENCHMARKS.md) and ruled out PostgreSQL's heap-only updates. No query used it: fleet filters
page through vehicles in id order and probe the twin's primary key per vehicle.

Revision ID: 0007
Revises: 0006
"""

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("twin", schema=None) as batch_op:
        batch_op.drop_index("ix_twin_signal_num")


def downgrade() -> None:
    with op.batch_alter_table("twin", schema=None) as batch_op:
        batch_op.create_index("ix_twin_signal_num", ["signal_id", "num"], unique=False)
