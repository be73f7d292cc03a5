"""Reading history: raw values page by page, and time buckets for charts.

History holds one row per (vehicle, ts) whose JSON body carries every signal of that sample,
keyed by signal id. The database extracts the wanted signals (`Dialect.body`), so a query
for one signal moves only that signal's JSON, and skips samples without any wanted signal.
"""

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import msgspec
from sqlalchemy import BigInteger, Engine, and_, func, literal, select

from autocloud.adapters.sql.dialect import Dialect
from autocloud.adapters.sql.errors import translated
from autocloud.adapters.sql.schema import history
from autocloud.domain.records import Bucket, HistoryRow, Value

_decode = msgspec.json.decode


def value_of_json(raw: str) -> Value:
    """A stored value's JSON as a `Value` (arrays as tuples, as ingest normalised them)."""
    decoded: Value = _decode(raw)
    return tuple(decoded) if isinstance(decoded, list) else decoded


class SqlHistory:
    """History queries on one engine; `known_ids` maps paths to the ids ever stored."""

    def __init__(
        self,
        engine: Engine,
        dialect: Dialect,
        known_ids: Callable[[Sequence[str]], Mapping[str, int]],
    ) -> None:
        self._engine = engine
        self._body = dialect.body
        self._known_ids = known_ids

    def rows(
        self,
        vehicle_id: int,
        paths: Sequence[str],
        since: int,
        until: int,
        *,
        after: tuple[int, str] | None,
        limit: int,
    ) -> list[HistoryRow]:
        """Values in (ts, path) order, paths by code point, from after the `after` cursor."""
        ids = self._known_ids(paths)
        if not ids or limit <= 0:
            return []
        ordered = sorted(ids)
        body = history.c.body
        query = (
            select(history.c.ts, *(self._body.value_json(body, ids[p]) for p in ordered))
            .where(
                history.c.vehicle_id == vehicle_id,
                history.c.ts >= max(since, after[0] if after else since),
                history.c.ts < until,
                self._body.has_any(body, [ids[p] for p in ordered]),
            )
            .order_by(history.c.ts)
            # Every sample holds a wanted value, so `limit` of them fill the page, plus the
            # one at the cursor's instant whose values may all precede the cursor.
            .limit(limit + 1)
        )
        found: list[HistoryRow] = []
        with translated(), self._engine.connect() as conn:
            for ts, *values in conn.execute(query):
                for path, raw in zip(ordered, values, strict=True):
                    if raw is None or (after is not None and (ts, path) <= after):
                        continue
                    found.append(HistoryRow(path, ts, value_of_json(raw)))
                    if len(found) == limit:
                        return found
        return found

    def buckets(
        self, vehicle_id: int, paths: Sequence[str], since: int, until: int, bucket_ms: int
    ) -> list[Bucket]:
        """count/min/avg/max/last per bucket of each numeric signal (booleans as 0/1)."""
        ids = self._known_ids(paths)
        found: list[Bucket] = []
        with translated(), self._engine.connect() as conn:
            for path in sorted(ids):
                for r in conn.execute(
                    self._bucket_query(vehicle_id, ids[path], since, until, bucket_ms)
                ):
                    found.append(
                        Bucket(
                            path=path,
                            start=since + int(r.bucket) * bucket_ms,
                            count=int(r.n),
                            min=float(r.lo),
                            avg=float(r.mean),
                            max=float(r.hi),
                            last=float(r.last),
                        )
                    )
        return found

    def _bucket_query(
        self, vehicle_id: int, signal_id: int, since: int, until: int, bucket_ms: int
    ) -> Any:
        number = self._body.number
        values = (
            select(history.c.ts, number(history.c.body, signal_id).label("v"))
            .where(
                history.c.vehicle_id == vehicle_id,
                history.c.ts >= since,
                history.c.ts < until,
                self._body.has_any(history.c.body, [signal_id]),
            )
            .subquery("vals")
        )
        # Integer division on both dialects: ts and bucket_ms are integers.
        bucket = ((values.c.ts - since) // literal(bucket_ms, BigInteger)).label("bucket")
        grouped = (
            select(
                bucket,
                func.count().label("n"),
                func.min(values.c.v).label("lo"),
                func.avg(values.c.v).label("mean"),
                func.max(values.c.v).label("hi"),
                func.max(values.c.ts).label("last_ts"),
            )
            .where(values.c.v.is_not(None))
            .group_by(bucket)
            .cte("grouped")
        )
        # The last value of a bucket is the one at its greatest ts: a primary-key lookup.
        return (
            select(grouped, number(history.c.body, signal_id).label("last"))
            .join(
                history,
                and_(history.c.vehicle_id == vehicle_id, history.c.ts == grouped.c.last_ts),
            )
            .order_by(grouped.c.bucket)
        )
