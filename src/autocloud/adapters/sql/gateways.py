"""Fleet gateways and their granted vehicles in SQL (the `GatewayStore` port)."""

from collections.abc import Iterable
from typing import Any

from sqlalchemy import Engine, delete, func, select
from sqlalchemy.engine import Row
from sqlalchemy.exc import IntegrityError

from autocloud.adapters.sql.dialect import Dialect
from autocloud.adapters.sql.errors import translated
from autocloud.adapters.sql.schema import brands, vehicles
from autocloud.adapters.sql.schema_gateways import gateway_vehicles, gateways
from autocloud.domain.errors import Conflict, NotFound
from autocloud.domain.gateway import Gateway

CHUNK = 500  # rows per statement: inside every driver's parameter limit


def _chunks(items: list[Any]) -> Iterable[list[Any]]:
    for start in range(0, len(items), CHUNK):
        yield items[start : start + CHUNK]


class SqlGateways:
    """The `GatewayStore` port on any SQLAlchemy engine."""

    def __init__(self, engine: Engine, dialect: Dialect) -> None:
        self._engine = engine
        self._dialect = dialect

    def _query(self) -> Any:
        counts = (
            select(gateway_vehicles.c.gateway_id, func.count().label("n"))
            .group_by(gateway_vehicles.c.gateway_id)
            .subquery()
        )
        return (
            select(
                gateways.c.id,
                gateways.c.brand_id,
                gateways.c.name,
                gateways.c.created_ms,
                func.coalesce(counts.c.n, 0).label("n"),
            )
            .outerjoin(counts, counts.c.gateway_id == gateways.c.id)
            .order_by(gateways.c.id)
        )

    @staticmethod
    def _gateway(row: Row[Any]) -> Gateway:
        return Gateway(row.id, row.brand_id, row.name, row.created_ms, int(row.n))

    def add_gateway(self, brand: str, name: str, secret_digest: str, now_ms: int) -> Gateway:
        values = {
            "brand_id": brand,
            "name": name,
            "secret_digest": secret_digest,
            "created_ms": now_ms,
        }
        with translated(), self._engine.begin() as conn:
            if conn.execute(select(brands.c.id).where(brands.c.id == brand)).first() is None:
                raise NotFound(f"brand {brand!r} not found")
            try:
                key = conn.execute(gateways.insert().values(**values)).inserted_primary_key
            except IntegrityError:
                raise Conflict(f"gateway {name!r} exists already in brand {brand!r}") from None
        assert key is not None
        return Gateway(int(key[0]), brand, name, now_ms, 0)

    def gateway(self, gateway_id: int) -> Gateway | None:
        with translated(), self._engine.connect() as conn:
            row = conn.execute(self._query().where(gateways.c.id == gateway_id)).first()
        return None if row is None else self._gateway(row)

    def gateway_by_name(self, brand: str, name: str) -> Gateway | None:
        query = self._query().where(gateways.c.brand_id == brand, gateways.c.name == name)
        with translated(), self._engine.connect() as conn:
            row = conn.execute(query).first()
        return None if row is None else self._gateway(row)

    def gateways(self, scope: str | None) -> list[Gateway]:
        query = self._query()
        if scope is not None:
            query = query.where(gateways.c.brand_id == scope)
        with translated(), self._engine.connect() as conn:
            return [self._gateway(r) for r in conn.execute(query)]

    def secret_digest(self, brand: str, name: str) -> str | None:
        query = select(gateways.c.secret_digest).where(
            gateways.c.brand_id == brand, gateways.c.name == name
        )
        with translated(), self._engine.connect() as conn:
            found: str | None = conn.execute(query).scalar()
        return found

    def vehicles_of(self, vins: Iterable[str]) -> dict[str, tuple[int, str]]:
        found: dict[str, tuple[int, str]] = {}
        with translated(), self._engine.connect() as conn:
            for chunk in _chunks(sorted(set(vins))):
                query = select(vehicles.c.vin, vehicles.c.id, vehicles.c.brand_id).where(
                    vehicles.c.vin.in_(chunk)
                )
                for vin, vehicle_id, brand in conn.execute(query):
                    found[vin] = (vehicle_id, brand)
        return found

    def grant(self, gateway_id: int, vehicle_ids: Iterable[int]) -> int:
        ids = sorted(set(vehicle_ids))
        added = 0
        with translated(), self._engine.begin() as conn:
            if (
                conn.execute(select(gateways.c.id).where(gateways.c.id == gateway_id)).first()
                is None
            ):
                raise NotFound(f"gateway {gateway_id} not found")
            for chunk in _chunks(ids):
                have = set(
                    conn.execute(
                        select(gateway_vehicles.c.vehicle_id).where(
                            gateway_vehicles.c.gateway_id == gateway_id,
                            gateway_vehicles.c.vehicle_id.in_(chunk),
                        )
                    ).scalars()
                )
                rows = [{"gateway_id": gateway_id, "vehicle_id": v} for v in chunk if v not in have]
                if rows:
                    try:
                        conn.execute(gateway_vehicles.insert(), rows)
                    except IntegrityError:  # a vehicle deleted meanwhile
                        raise NotFound("a vehicle to grant was deleted meanwhile") from None
                added += len(rows)
        return added

    def revoke(self, gateway_id: int, vins: Iterable[str]) -> int:
        wanted = sorted(set(vins))
        removed = 0
        with translated(), self._engine.begin() as conn:
            for chunk in _chunks(wanted):
                ids = select(vehicles.c.id).where(vehicles.c.vin.in_(chunk))
                done = conn.execute(
                    delete(gateway_vehicles).where(
                        gateway_vehicles.c.gateway_id == gateway_id,
                        gateway_vehicles.c.vehicle_id.in_(ids),
                    )
                )
                removed += done.rowcount or 0
        return removed

    def granted(self, gateway_id: int) -> frozenset[str]:
        query = (
            select(vehicles.c.vin)
            .join(gateway_vehicles, gateway_vehicles.c.vehicle_id == vehicles.c.id)
            .where(gateway_vehicles.c.gateway_id == gateway_id)
        )
        with translated(), self._engine.connect() as conn:
            return frozenset(conn.execute(query).scalars())

    def holding(self, vehicle_id: int) -> list[Gateway]:
        held = select(gateway_vehicles.c.gateway_id).where(
            gateway_vehicles.c.vehicle_id == vehicle_id
        )
        with translated(), self._engine.connect() as conn:
            rows = conn.execute(self._query().where(gateways.c.id.in_(held))).all()
        return [self._gateway(r) for r in rows]

    def delete_gateway(self, gateway_id: int) -> None:
        with translated(), self._engine.begin() as conn:
            conn.execute(
                delete(gateway_vehicles).where(gateway_vehicles.c.gateway_id == gateway_id)
            )
            done = conn.execute(delete(gateways).where(gateways.c.id == gateway_id))
            if done.rowcount == 0:
                raise NotFound(f"gateway {gateway_id} not found")
