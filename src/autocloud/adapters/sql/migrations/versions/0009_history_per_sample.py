"""history: one row per (vehicle, ts) with every signal of the sample in a JSON body

The old layout had one row per (vehicle, signal, ts). Existing history is carried over:
the rows of one instant become one body keyed by signal id, numbers as JSON numbers and
everything else from its JSON text. The downgrade splits the bodies again.

Revision ID: 0009
Revises: 0008
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

# Old rows to one body per instant; `txt` is JSON of non-numbers (and of booleans, which
# also have `num`), `num` alone holds a number. SQLite writes a REAL into JSON with 15
# significant digits, so numbers go through printf('%!.17g'), which round-trips a double.
# jsonb cannot hold U+0000, which the old text column could: it becomes U+FFFD (ingest now
# refuses NUL in text values on both databases).
_GROUP = {
    "sqlite": (
        "INSERT INTO history (vehicle_id, ts, body) "
        "SELECT vehicle_id, ts, json_group_object(CAST(signal_id AS TEXT), "
        "CASE WHEN txt IS NULL THEN json(printf('%!.17g', num)) ELSE json(txt) END) "
        "FROM history_old GROUP BY vehicle_id, ts"
    ),
    "postgresql": (
        "INSERT INTO history (vehicle_id, ts, body) "
        "SELECT vehicle_id, ts, jsonb_object_agg(signal_id::text, "
        "CASE WHEN txt IS NULL THEN to_jsonb(num) "
        "ELSE replace(txt, '\\u0000', '\\ufffd')::jsonb END) "
        "FROM history_old GROUP BY vehicle_id, ts"
    ),
}
_SPLIT = {
    "sqlite": (
        "INSERT INTO history (vehicle_id, signal_id, ts, num, txt) "
        "SELECT h.vehicle_id, CAST(j.key AS INTEGER), h.ts, "
        "CASE WHEN j.type IN ('integer', 'real') THEN j.value "
        "WHEN j.type = 'true' THEN 1.0 WHEN j.type = 'false' THEN 0.0 END, "
        "CASE WHEN j.type IN ('integer', 'real') THEN NULL "
        "WHEN j.type IN ('true', 'false') THEN j.type "
        "WHEN j.type = 'text' THEN json_quote(j.value) ELSE j.value END "
        "FROM history_new AS h, json_each(h.body) AS j"
    ),
    "postgresql": (
        "INSERT INTO history (vehicle_id, signal_id, ts, num, txt) "
        "SELECT h.vehicle_id, j.key::integer, h.ts, "
        "CASE jsonb_typeof(j.value) WHEN 'number' THEN (j.value #>> '{}')::float8 "
        "WHEN 'boolean' THEN CASE WHEN j.value::boolean THEN 1.0 ELSE 0.0 END END, "
        "CASE WHEN jsonb_typeof(j.value) = 'number' THEN NULL ELSE j.value::text END "
        "FROM history_new AS h, jsonb_each(h.body) AS j"
    ),
}


def _rename_away(old: str, new: str) -> None:
    """Rename a table and (PostgreSQL) its primary key, whose name is schema-wide."""
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"ALTER TABLE {old} RENAME CONSTRAINT pk_{old} TO pk_{new}")
    op.rename_table(old, new)


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    _rename_away("history", "history_old")
    op.create_table(
        "history",
        sa.Column("vehicle_id", sa.Integer(), nullable=False),
        sa.Column("ts", sa.BigInteger(), nullable=False),
        sa.Column("body", sa.Text().with_variant(JSONB(), "postgresql"), nullable=False),
        sa.PrimaryKeyConstraint("vehicle_id", "ts", name=op.f("pk_history")),
        sqlite_with_rowid=False,
    )
    op.execute(_GROUP[dialect])
    op.drop_table("history_old")


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    _rename_away("history", "history_new")
    op.create_table(
        "history",
        sa.Column("vehicle_id", sa.Integer(), nullable=False),
        sa.Column("signal_id", sa.Integer(), nullable=False),
        sa.Column("ts", sa.BigInteger(), nullable=False),
        sa.Column("num", sa.Float(), nullable=True),
        sa.Column("txt", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("vehicle_id", "signal_id", "ts", name=op.f("pk_history")),
        sqlite_with_rowid=False,
    )
    op.execute(_SPLIT[dialect])
    op.drop_table("history_new")
