"""Brands, vehicles, owners and API tokens in SQL (the `Registry` port).

The two reads every API request makes (its token; for a command, the vehicle with its
owners) use statements built once, with bound parameters: building a SQLAlchemy statement
per call and finding it in the compiled cache cost several times executing a prebuilt one;
the vehicle and its owners come in one query, and on PostgreSQL both reads run outside a
transaction (`_reader`: no BEGIN, and no ROLLBACK when the connection goes back to the
pool, a round trip each). Tokens found are also cached for a few seconds (`registry_tokens`).
"""

from collections.abc import Collection
from typing import Any

from sqlalchemy import Connection, Engine, Select, bindparam, delete, select, update
from sqlalchemy.engine import Row
from sqlalchemy.exc import IntegrityError

from autocloud.adapters.sql.dialect import Dialect
from autocloud.adapters.sql.errors import translated
from autocloud.adapters.sql.registry_tokens import TokenCache
from autocloud.adapters.sql.schema import (
    api_tokens,
    brands,
    desired,
    events,
    history,
    owners,
    presence,
    seq_windows,
    twin,
    vehicle_owners,
    vehicles,
)
from autocloud.domain.errors import Conflict, NotFound
from autocloud.domain.records import Brand, Owner, TokenInfo, Vehicle


def _vehicle(row: Row[*tuple[Any, ...]], owner_ids: tuple[int, ...] = ()) -> Vehicle:
    return Vehicle(
        id=row.id,
        vin=row.vin,
        brand=row.brand_id,
        model=row.model,
        model_year=row.model_year,
        manufacturer=row.manufacturer,
        created_ms=row.created_ms,
        owners=owner_ids,
    )


def _owner(row: Row[Any]) -> Owner:
    return Owner(row.id, row.brand_id, row.name, row.email, row.created_ms)


def _token(row: Row[Any]) -> TokenInfo:
    return TokenInfo(
        row.id, row.name, row.role, row.brand_id, row.created_ms, row.revoked_ms, row.owner_id
    )


_VEHICLE_COLUMNS = (
    vehicles.c.id,
    vehicles.c.vin,
    vehicles.c.brand_id,
    vehicles.c.model,
    vehicles.c.model_year,
    vehicles.c.manufacturer,
    vehicles.c.created_ms,
)
# A vehicle and its owners in one query: a row per owner (ascending), or one with no owner.
_VEHICLE_BY_VIN: Select[Any] = (
    select(*_VEHICLE_COLUMNS, vehicle_owners.c.owner_id)
    .outerjoin(vehicle_owners, vehicle_owners.c.vehicle_id == vehicles.c.id)
    .where(vehicles.c.vin == bindparam("b_vin"))
    .order_by(vehicle_owners.c.owner_id)
)
_TOKEN_BY_DIGEST: Select[Any] = select(api_tokens).where(
    api_tokens.c.digest == bindparam("b_digest")
)


class SqlRegistry:
    """The `Registry` port on any SQLAlchemy engine."""

    def __init__(self, engine: Engine, dialect: Dialect) -> None:
        self._engine = engine
        self._dialect = dialect
        self._tokens = TokenCache()
        pg = dialect.name == "postgresql"
        self._reader = engine.execution_options(isolation_level="AUTOCOMMIT") if pg else engine

    def add_brand(self, brand_id: str, name: str, now_ms: int) -> Brand:
        with translated(), self._engine.begin() as conn:
            try:
                conn.execute(brands.insert().values(id=brand_id, name=name, created_ms=now_ms))
            except IntegrityError:
                raise Conflict(f"brand {brand_id!r} exists already") from None
        return Brand(brand_id, name, now_ms)

    def brands(self, scope: str | None) -> list[Brand]:
        query = select(brands).order_by(brands.c.id)
        if scope is not None:
            query = query.where(brands.c.id == scope)
        with translated(), self._engine.connect() as conn:
            return [Brand(r.id, r.name, r.created_ms) for r in conn.execute(query)]

    def add_vehicle(self, vehicle: Vehicle, secret_digest: str) -> Vehicle:
        values = {
            "vin": vehicle.vin,
            "brand_id": vehicle.brand,
            "model": vehicle.model,
            "model_year": vehicle.model_year,
            "manufacturer": vehicle.manufacturer,
            "secret_digest": secret_digest,
            "created_ms": vehicle.created_ms,
        }
        with translated(), self._engine.begin() as conn:
            if (
                conn.execute(select(brands.c.id).where(brands.c.id == vehicle.brand)).first()
                is None
            ):
                raise NotFound(f"brand {vehicle.brand!r} not found; create it first")
            try:
                new_id = conn.execute(vehicles.insert().values(**values)).inserted_primary_key
            except IntegrityError:
                raise Conflict(f"vehicle {vehicle.vin} is registered already") from None
        assert new_id is not None
        return _vehicle_with_id(vehicle, int(new_id[0]))

    def vehicle(self, vin: str) -> Vehicle | None:
        with translated(), self._reader.connect() as conn:
            rows = conn.execute(_VEHICLE_BY_VIN, {"b_vin": vin}).all()
        if not rows:
            return None
        owner_ids = tuple(r.owner_id for r in rows if r.owner_id is not None)
        return _vehicle(rows[0], owner_ids)

    def vehicles(
        self,
        scope: str | None,
        *,
        model: str | None,
        after: int,
        limit: int,
        vins: Collection[str] | None = None,
    ) -> list[Vehicle]:
        query: Select[Any] = (
            select(*_VEHICLE_COLUMNS)
            .where(vehicles.c.id > after)
            .order_by(vehicles.c.id)
            .limit(limit)
        )
        if scope is not None:
            query = query.where(vehicles.c.brand_id == scope)
        if model is not None:
            query = query.where(vehicles.c.model == model)
        if vins is not None:
            query = query.where(vehicles.c.vin.in_(sorted(vins)))
        with translated(), self._engine.connect() as conn:
            rows = conn.execute(query).all()
            owner_ids = _owner_ids(conn, [r.id for r in rows])
        return [_vehicle(r, owner_ids.get(r.id, ())) for r in rows]

    def owned_vins(self, owner_id: int) -> list[str]:
        query = (
            select(vehicles.c.vin)
            .join(vehicle_owners, vehicle_owners.c.vehicle_id == vehicles.c.id)
            .where(vehicle_owners.c.owner_id == owner_id)
            .order_by(vehicles.c.vin)
        )
        with translated(), self._engine.connect() as conn:
            return [r.vin for r in conn.execute(query)]

    def set_secret(self, vin: str, secret_digest: str) -> None:
        with translated(), self._engine.begin() as conn:
            done = conn.execute(
                update(vehicles).where(vehicles.c.vin == vin).values(secret_digest=secret_digest)
            )
            if done.rowcount == 0:
                raise NotFound(f"vehicle {vin} not found")

    def secret_digest(self, vin: str) -> str | None:
        with translated(), self._engine.connect() as conn:
            found: str | None = conn.execute(
                select(vehicles.c.secret_digest).where(vehicles.c.vin == vin)
            ).scalar()
            return found

    def delete_vehicle(self, vin: str) -> None:
        with translated(), self._engine.begin() as conn:
            row = conn.execute(select(vehicles.c.id).where(vehicles.c.vin == vin)).first()
            if row is None:
                raise NotFound(f"vehicle {vin} not found")
            # Telemetry tables carry no foreign key (ingest writes them at volume), so the
            # vehicle's rows go here; SQLite may hand the freed id to the next vehicle.
            for table in (vehicle_owners, twin, desired, presence, seq_windows, events, history):
                conn.execute(delete(table).where(table.c.vehicle_id == row.id))
            conn.execute(delete(vehicles).where(vehicles.c.id == row.id))

    def add_owner(self, brand: str, name: str, email: str, now_ms: int) -> Owner:
        with translated(), self._engine.begin() as conn:
            if conn.execute(select(brands.c.id).where(brands.c.id == brand)).first() is None:
                raise NotFound(f"brand {brand!r} not found")
            try:
                key = conn.execute(
                    owners.insert().values(
                        brand_id=brand, name=name, email=email, created_ms=now_ms
                    )
                ).inserted_primary_key
            except IntegrityError:
                raise Conflict(f"an owner with email {email!r} exists in brand {brand!r}") from None
        assert key is not None
        return Owner(int(key[0]), brand, name, email, now_ms)

    def owner(self, owner_id: int) -> Owner | None:
        with translated(), self._engine.connect() as conn:
            row = conn.execute(select(owners).where(owners.c.id == owner_id)).first()
        return None if row is None else _owner(row)

    def owners(self, scope: str | None, *, after: int, limit: int) -> list[Owner]:
        query = select(owners).where(owners.c.id > after).order_by(owners.c.id).limit(limit)
        if scope is not None:
            query = query.where(owners.c.brand_id == scope)
        with translated(), self._engine.connect() as conn:
            return [_owner(r) for r in conn.execute(query)]

    def attach_owner(self, vehicle_id: int, owner_id: int) -> None:
        stmt = self._dialect.insert(vehicle_owners).values(vehicle_id=vehicle_id, owner_id=owner_id)
        with translated(), self._engine.begin() as conn:
            try:
                conn.execute(stmt.on_conflict_do_nothing())
            except IntegrityError:  # a foreign key: the vehicle or the owner is gone
                raise NotFound(f"vehicle {vehicle_id} or owner {owner_id} not found") from None

    def detach_owner(self, vehicle_id: int, owner_id: int) -> None:
        with translated(), self._engine.begin() as conn:
            conn.execute(
                delete(vehicle_owners).where(
                    vehicle_owners.c.vehicle_id == vehicle_id, vehicle_owners.c.owner_id == owner_id
                )
            )

    def add_token(
        self,
        name: str,
        digest: str,
        role: str,
        brand: str | None,
        now_ms: int,
        owner_id: int | None = None,
    ) -> TokenInfo:
        values = {
            "name": name,
            "digest": digest,
            "role": role,
            "brand_id": brand,
            "created_ms": now_ms,
            "owner_id": owner_id,
        }
        with translated(), self._engine.begin() as conn:
            if (
                brand is not None
                and conn.execute(select(brands.c.id).where(brands.c.id == brand)).first() is None
            ):
                raise NotFound(f"brand {brand!r} not found")
            key = conn.execute(api_tokens.insert().values(**values)).inserted_primary_key
        assert key is not None
        return TokenInfo(int(key[0]), name, role, brand, now_ms, None, owner_id)

    def token_by_digest(self, digest: str) -> TokenInfo | None:
        """The token with this digest (revoked or not); reused for `TOKEN_TTL_S` once found."""
        cached = self._tokens.get(digest)
        if cached is not None:
            return cached
        stamp = self._tokens.stamp()
        with translated(), self._reader.connect() as conn:
            row = conn.execute(_TOKEN_BY_DIGEST, {"b_digest": digest}).first()
        if row is None:
            return None
        found = _token(row)
        self._tokens.put(digest, found, stamp)
        return found

    def tokens(self, scope: str | None) -> list[TokenInfo]:
        query = select(api_tokens).order_by(api_tokens.c.id)
        if scope is not None:
            query = query.where(api_tokens.c.brand_id == scope)
        with translated(), self._engine.connect() as conn:
            return [_token(r) for r in conn.execute(query)]

    def revoke_token(self, token_id: int, now_ms: int) -> None:
        with translated(), self._engine.begin() as conn:
            conn.execute(
                update(api_tokens)
                .where(api_tokens.c.id == token_id, api_tokens.c.revoked_ms.is_(None))
                .values(revoked_ms=now_ms)
            )
        self._tokens.drop(token_id)  # after the commit: the next read sees the revocation


def _owner_ids(conn: Connection, vehicle_ids: list[int]) -> dict[int, tuple[int, ...]]:
    """Owner ids of each of the vehicles, in ascending order."""
    found: dict[int, tuple[int, ...]] = {}
    if not vehicle_ids:
        return found
    query = (
        select(vehicle_owners.c.vehicle_id, vehicle_owners.c.owner_id)
        .where(vehicle_owners.c.vehicle_id.in_(vehicle_ids))
        .order_by(vehicle_owners.c.vehicle_id, vehicle_owners.c.owner_id)
    )
    for vehicle_id, owner_id in conn.execute(query):
        found[vehicle_id] = (*found.get(vehicle_id, ()), owner_id)
    return found


def _vehicle_with_id(vehicle: Vehicle, new_id: int) -> Vehicle:
    return Vehicle(
        new_id,
        vehicle.vin,
        vehicle.brand,
        vehicle.model,
        vehicle.model_year,
        vehicle.manufacturer,
        vehicle.created_ms,
        vehicle.owners,
    )
