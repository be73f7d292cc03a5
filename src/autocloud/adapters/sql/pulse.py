"""Fleet size and vehicles online per brand: one aggregate query for the fleet pulse."""

from sqlalchemy import Engine, case, func, select

from autocloud.adapters.sql.errors import translated
from autocloud.adapters.sql.schema import presence, vehicles


def fleet_counts(engine: Engine) -> dict[str, tuple[int, int]]:
    """brand -> (vehicles registered, vehicles online now)."""
    online = func.sum(case((presence.c.online.is_(True), 1), else_=0))
    query = (
        select(vehicles.c.brand_id, func.count(vehicles.c.id), online)
        .select_from(vehicles.outerjoin(presence, presence.c.vehicle_id == vehicles.c.id))
        .group_by(vehicles.c.brand_id)
    )
    with translated(), engine.connect() as conn:
        return {row[0]: (int(row[1]), int(row[2] or 0)) for row in conn.execute(query)}
