"""history on SQLite: a rowid table (rows in arrival order) with its key as a unique index

Until now SQLite stored history clustered on its key (WITHOUT ROWID), so each insert went into
the middle of the table, next to the vehicle's previous sample: one more leaf of a table that
grows by every message had to be read, split and written back per message, and the ingest
commit grew costlier as history deepened (~9 µs a message on an empty table, ~45 µs with 40
samples per vehicle of 10,000; docs/architecture.md, "History layout"). As a rowid table, new
rows append to the table's last page and only the small key index (vehicle_id, ts) takes a
random write: PostgreSQL's heap plus primary-key index, which it always had. Nothing changes
on PostgreSQL. Existing rows are copied in key order; the downgrade clusters them again.

Revision ID: 0011
Revises: 0010
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def _rebuild(*, with_rowid: bool) -> None:
    """Copy history into a new table of the given SQLite layout (no-op on PostgreSQL)."""
    if op.get_bind().dialect.name != "sqlite":
        return
    op.rename_table("history", "history_old")
    op.create_table(
        "history",
        sa.Column("vehicle_id", sa.Integer(), nullable=False),
        sa.Column("ts", sa.BigInteger(), nullable=False),
        sa.Column("body", sa.Text().with_variant(JSONB(), "postgresql"), nullable=False),
        sa.PrimaryKeyConstraint("vehicle_id", "ts", name=op.f("pk_history")),
        sqlite_with_rowid=with_rowid,
    )
    op.execute(
        "INSERT INTO history (vehicle_id, ts, body) "
        "SELECT vehicle_id, ts, body FROM history_old ORDER BY vehicle_id, ts"
    )
    op.drop_table("history_old")


def upgrade() -> None:
    _rebuild(with_rowid=True)


def downgrade() -> None:
    _rebuild(with_rowid=False)
