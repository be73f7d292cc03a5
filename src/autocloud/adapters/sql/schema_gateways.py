"""Tables of the fleet-gateway feature (migration 0006): gateways and their granted vehicles.

A gateway belongs to a brand and is named uniquely within it; its broker secret is kept only
as a digest. A grant links a gateway to a vehicle row (deleted with either).
"""

from sqlalchemy import BigInteger, Column, ForeignKey, Index, Integer, String, Table

from autocloud.adapters.sql.schema import metadata

gateways = Table(
    "gateways",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("brand_id", String(64), ForeignKey("brands.id"), nullable=False),
    Column("name", String(64), nullable=False),
    Column("secret_digest", String(64), nullable=False),
    Column("created_ms", BigInteger, nullable=False),
    Index("uq_gateways_brand_name", "brand_id", "name", unique=True),
    sqlite_autoincrement=True,  # ids are never reused after a delete
)

gateway_vehicles = Table(
    "gateway_vehicles",
    metadata,
    Column("gateway_id", Integer, ForeignKey("gateways.id", ondelete="CASCADE"), primary_key=True),
    Column("vehicle_id", Integer, ForeignKey("vehicles.id", ondelete="CASCADE"), primary_key=True),
    Index("ix_gateway_vehicles_vehicle", "vehicle_id"),
)
