"""The fleet map's snapshot in two queries: the vehicles with their presence, then the twin
values of the handful of signals the map shows (see `domain/positions.py`).

`/v1/fleet` pages through vehicles with their summary signals, 1,000 at a time; the map
needs all of a tenant's vehicles at once and only their position and state, so this reads
them in one pass (10,000 vehicles: ~70,000 small rows).
"""

from collections.abc import Callable, Collection, Iterable

from sqlalchemy import Engine, func, literal, select

from autocloud.adapters.sql.errors import translated
from autocloud.adapters.sql.schema import presence, twin, vehicles
from autocloud.domain.positions import BY_PATH, ONLINE, SIGNALS, Compact, Position

SignalIds = Callable[[Iterable[str]], dict[str, int]]


class SqlPositions:
    def __init__(self, engine: Engine, signal_ids: SignalIds) -> None:
        self._engine = engine
        self._signal_ids = signal_ids

    def positions(self, scope: str | None, vins: Collection[str] | None) -> list[Position]:
        ids = self._signal_ids(path for path, _ in SIGNALS.values())
        by_id = {signal_id: BY_PATH[path] for path, signal_id in ids.items()}
        is_online = func.coalesce(presence.c.online, literal(False))
        cars = (
            select(vehicles.c.id, vehicles.c.vin, vehicles.c.brand_id, vehicles.c.model, is_online)
            .select_from(vehicles.outerjoin(presence, presence.c.vehicle_id == vehicles.c.id))
            .order_by(vehicles.c.id)
        )
        values = (
            select(twin.c.vehicle_id, twin.c.signal_id, twin.c.num)
            .join(vehicles, vehicles.c.id == twin.c.vehicle_id)
            .where(twin.c.signal_id.in_(list(by_id)))
        )
        if scope is not None:
            cars = cars.where(vehicles.c.brand_id == scope)
            values = values.where(vehicles.c.brand_id == scope)
        if vins is not None:  # an owner's token: only the owner's vehicles
            cars = cars.where(vehicles.c.vin.in_(sorted(vins)))
            values = values.where(vehicles.c.vin.in_(sorted(vins)))
        with translated(), self._engine.connect() as conn:
            rows = conn.execute(cars).all()
            fields: dict[int, dict[str, Compact]] = {r[0]: {ONLINE: int(bool(r[4]))} for r in rows}
            for vehicle_id, signal_id, num in conn.execute(values):
                found = fields.get(vehicle_id)
                if found is not None:  # registered between the two reads: left out
                    name, rounding = by_id[signal_id]
                    found[name] = None if num is None else rounding(num)
        return [Position(r[1], r[2], r[3] or "", fields[r[0]]) for r in rows]
