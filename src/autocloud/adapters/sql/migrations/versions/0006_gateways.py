"""fleet gateways: gateways and gateway_vehicles

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "gateways",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("brand_id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("secret_digest", sa.String(length=64), nullable=False),
        sa.Column("created_ms", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["brand_id"], ["brands.id"], name=op.f("fk_gateways_brand_id_brands")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_gateways")),
        sqlite_autoincrement=True,
    )
    with op.batch_alter_table("gateways", schema=None) as batch_op:
        batch_op.create_index("uq_gateways_brand_name", ["brand_id", "name"], unique=True)

    op.create_table(
        "gateway_vehicles",
        sa.Column("gateway_id", sa.Integer(), nullable=False),
        sa.Column("vehicle_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["gateway_id"],
            ["gateways.id"],
            name=op.f("fk_gateway_vehicles_gateway_id_gateways"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["vehicle_id"],
            ["vehicles.id"],
            name=op.f("fk_gateway_vehicles_vehicle_id_vehicles"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("gateway_id", "vehicle_id", name=op.f("pk_gateway_vehicles")),
    )
    with op.batch_alter_table("gateway_vehicles", schema=None) as batch_op:
        batch_op.create_index("ix_gateway_vehicles_vehicle", ["vehicle_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("gateway_vehicles", schema=None) as batch_op:
        batch_op.drop_index("ix_gateway_vehicles_vehicle")
    op.drop_table("gateway_vehicles")
    with op.batch_alter_table("gateways", schema=None) as batch_op:
        batch_op.drop_index("uq_gateways_brand_name")
    op.drop_table("gateways")
