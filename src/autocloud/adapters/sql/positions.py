"""The fleet map's snapshot: the vehicles with their presence, then the twin values of the
handful of signals the map shows (see `domain/positions.py`).

`/v1/fleet` pages through vehicles with their summary signals, 1,000 at a time; the map
needs all of a tenant's vehicles at once and only their position and state, so this reads
them in one pass (10,000 vehicles: 10,000 rows, the numbers extracted in SQL).
"""

from collections.abc import Callable, Collection, Iterable, Iterator

from sqlalchemy import Connection, Engine, func, literal, select

from autocloud.adapters.sql.dialect import SampleBody
from autocloud.adapters.sql.errors import translated
from autocloud.adapters.sql.schema import presence, twin, vehicles
from autocloud.domain.positions import ONLINE, SIGNALS, Compact, Position

SignalIds = Callable[[Iterable[str]], dict[str, int]]


class SqlPositions:
    def __init__(self, engine: Engine, signal_ids: SignalIds, body: SampleBody) -> None:
        self._engine = engine
        self._signal_ids = signal_ids
        self._body = body  # the dialect's JSON expressions (the twin body is history's shape)

    def positions(self, scope: str | None, vins: Collection[str] | None) -> list[Position]:
        ids = self._signal_ids(path for path, _ in SIGNALS.values())
        by_name = {name: rounding for name, (_, rounding) in SIGNALS.items()}
        is_online = func.coalesce(presence.c.online, literal(False))
        cars = (
            select(vehicles.c.id, vehicles.c.vin, vehicles.c.brand_id, vehicles.c.model, is_online)
            .select_from(vehicles.outerjoin(presence, presence.c.vehicle_id == vehicles.c.id))
            .order_by(vehicles.c.id)
        )
        if scope is not None:
            cars = cars.where(vehicles.c.brand_id == scope)
        if vins is not None:  # an owner's token: only the owner's vehicles
            cars = cars.where(vehicles.c.vin.in_(sorted(vins)))
        with translated(), self._engine.connect() as conn:
            rows = conn.execute(cars).all()
            fields: dict[int, dict[str, Compact]] = {r[0]: {ONLINE: int(bool(r[4]))} for r in rows}
            for name, vehicle_id, num in self._values(conn, ids, scope, vins):
                found = fields.get(vehicle_id)  # None: registered after the first read
                if found is not None:
                    found[name] = None if num is None else by_name[name](num)
        return [Position(r[1], r[2], r[3] or "", fields[r[0]]) for r in rows]

    def _values(
        self,
        conn: Connection,
        ids: dict[str, int],
        scope: str | None,
        vins: Collection[str] | None,
    ) -> Iterator[tuple[str, int, float | None]]:
        """(field, vehicle id, number) of the map's signals: one pass over the twin rows,
        the numbers taken out of each row's body by the database. A brand or an owner: joined
        to the vehicles, which the brand index (or the VINs) narrows first."""
        names = list(SIGNALS)
        numbers = [self._body.number(twin.c.body, ids[SIGNALS[name][0]]) for name in names]
        query = select(twin.c.vehicle_id, *numbers)
        if scope is not None or vins is not None:
            query = query.join(vehicles, vehicles.c.id == twin.c.vehicle_id)
        if scope is not None:
            query = query.where(vehicles.c.brand_id == scope)
        if vins is not None:  # an owner's token: only the owner's vehicles
            query = query.where(vehicles.c.vin.in_(sorted(vins)))
        for row in conn.execute(query):
            for name, num in zip(names, row[1:], strict=True):
                if num is not None:
                    yield name, row[0], num
