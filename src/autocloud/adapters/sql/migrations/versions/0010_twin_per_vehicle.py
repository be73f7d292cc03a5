"""twin: one row per vehicle, each signal's latest value in a JSON body

The old layout had one row per (vehicle, signal), so every telemetry message upserted one row
per signal it carried: ~97 µs of SQLite CPU for a 20-signal message, against ~13 µs for one
row per vehicle merged with json_patch (docs/architecture.md, "Twin layout"). Existing twins are
carried over: values into `body`, [ts, received_ms] into `meta`, both keyed by signal id. The
downgrade splits the rows again.

Revision ID: 0010
Revises: 0009
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

# `value` is JSON text already; jsonb cannot hold U+0000 (ingest refuses it since 0009, but
# an older twin may hold it), which becomes U+FFFD.
_GROUP = {
    "sqlite": (
        "INSERT INTO twin (vehicle_id, body, meta, newest_ts) "
        "SELECT vehicle_id, json_group_object(CAST(signal_id AS TEXT), json(value)), "
        "json_group_object(CAST(signal_id AS TEXT), json_array(ts, received_ms)), max(ts) "
        "FROM twin_old GROUP BY vehicle_id"
    ),
    "postgresql": (
        "INSERT INTO twin (vehicle_id, body, meta, newest_ts) "
        "SELECT vehicle_id, "
        "jsonb_object_agg(signal_id::text, replace(value, '\\u0000', '\\ufffd')::jsonb), "
        "jsonb_object_agg(signal_id::text, jsonb_build_array(ts, received_ms)), max(ts) "
        "FROM twin_old GROUP BY vehicle_id"
    ),
}
_SPLIT = {
    "sqlite": (
        "INSERT INTO twin (vehicle_id, signal_id, ts, value, num, received_ms) "
        "SELECT t.vehicle_id, CAST(b.key AS INTEGER), json_extract(m.value, '$[0]'), "
        "t.body -> ('$.\"' || b.key || '\"'), "
        "CASE WHEN b.type IN ('integer', 'real') THEN b.value "
        "WHEN b.type = 'true' THEN 1.0 WHEN b.type = 'false' THEN 0.0 END, "
        "json_extract(m.value, '$[1]') "
        "FROM twin_new AS t, json_each(t.body) AS b, json_each(t.meta) AS m WHERE m.key = b.key"
    ),
    "postgresql": (
        "INSERT INTO twin (vehicle_id, signal_id, ts, value, num, received_ms) "
        "SELECT t.vehicle_id, b.key::integer, (m.value ->> 0)::bigint, b.value::text, "
        "CASE jsonb_typeof(b.value) WHEN 'number' THEN (b.value #>> '{}')::float8 "
        "WHEN 'boolean' THEN CASE WHEN b.value::boolean THEN 1.0 ELSE 0.0 END END, "
        "(m.value ->> 1)::bigint "
        "FROM twin_new AS t CROSS JOIN LATERAL jsonb_each(t.body) AS b "
        "JOIN LATERAL jsonb_each(t.meta) AS m ON m.key = b.key"
    ),
}


def _rename_away(old: str, new: str) -> None:
    """Rename a table and (PostgreSQL) its primary key, whose name is schema-wide."""
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"ALTER TABLE {old} RENAME CONSTRAINT pk_{old} TO pk_{new}")
    op.rename_table(old, new)


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    _rename_away("twin", "twin_old")
    json_type = sa.Text().with_variant(JSONB(), "postgresql")
    op.create_table(
        "twin",
        sa.Column("vehicle_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("body", json_type, nullable=False),
        sa.Column("meta", json_type, nullable=False),
        sa.Column("newest_ts", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("vehicle_id", name=op.f("pk_twin")),
    )
    op.execute(_GROUP[dialect])
    op.drop_table("twin_old")


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    _rename_away("twin", "twin_new")
    op.create_table(
        "twin",
        sa.Column("vehicle_id", sa.Integer(), nullable=False),
        sa.Column("signal_id", sa.Integer(), nullable=False),
        sa.Column("ts", sa.BigInteger(), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.Column("num", sa.Float(), nullable=True),
        sa.Column("received_ms", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("vehicle_id", "signal_id", name=op.f("pk_twin")),
    )
    op.execute(_SPLIT[dialect])
    op.drop_table("twin_new")
