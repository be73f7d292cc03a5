"""Writing desired signal values of a vehicle's twin (the `desired` table), in a caller's
transaction: the telemetry store's `set_desired_many` and the command store's `add` (a
command's desired state is stored with the command, in one commit) share it."""

from collections.abc import Mapping

import msgspec
from sqlalchemy import Connection

from autocloud.adapters.sql.dialect import Dialect
from autocloud.adapters.sql.schema import desired
from autocloud.domain.records import Value


def upsert_desired(
    conn: Connection,
    dialect: Dialect,
    vehicle_id: int,
    values: Mapping[int, Value],
    now_ms: int,
    by: str,
) -> None:
    """Set desired values (signal id -> value) of one vehicle; one statement."""
    if not values:
        return
    upsert = dialect.insert(desired).values(
        [
            {
                "vehicle_id": vehicle_id,
                "signal_id": signal_id,
                "value": msgspec.json.encode(value).decode(),
                "set_ms": now_ms,
                "set_by": by,
            }
            for signal_id, value in sorted(values.items())
        ]
    )
    upsert = upsert.on_conflict_do_update(
        index_elements=[desired.c.vehicle_id, desired.c.signal_id],
        set_={
            "value": upsert.excluded.value,
            "set_ms": upsert.excluded.set_ms,
            "set_by": upsert.excluded.set_by,
        },
    )
    conn.execute(upsert)
