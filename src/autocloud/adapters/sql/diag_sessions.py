"""Remote diagnostic sessions in SQL (the `DiagSessionStore` port), and the ingest writer
that stores every `diag/response` a vehicle sends in the ingest transaction."""

import json
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, Engine, Row, and_, or_, select, update

from autocloud.adapters.sql.dialect import Dialect
from autocloud.adapters.sql.errors import translated
from autocloud.adapters.sql.schema import vehicles
from autocloud.adapters.sql.schema_diag_sessions import (
    diag_requests,
    diag_responses,
    diag_sessions,
)
from autocloud.domain.diag_session import DiagAnswer, DiagRequestRow, DiagSession
from autocloud.domain.protocol import DiagResponse
from autocloud.domain.records import Reply


def write_responses(conn: Connection, dialect: Dialect, replies: Sequence[Reply]) -> None:
    """Ingest writer for DiagResponse replies (registered in `store.ingest_writers`)."""
    rows = []
    for reply in replies:
        message: DiagResponse = reply.message
        rows.append(
            {
                "vehicle_id": reply.vehicle_id,
                "request_id": message.id,
                "ecu": message.ecu,
                "response": message.response.lower(),
                "ts": message.ts,
                "received_ms": reply.received_ms,
            }
        )
    if rows:
        conn.execute(diag_responses.insert(), rows)


_COLUMNS = (*diag_sessions.c, vehicles.c.vin)


def _session(row: Row[Any]) -> DiagSession:
    return DiagSession(
        id=row.id,
        vehicle_id=row.vehicle_id,
        vin=row.vin,
        brand=row.brand_id,
        requested_by=row.requested_by,
        created_ms=row.created_ms,
        expires_ms=row.expires_ms,
        status=row.status,
        ecus=tuple(json.loads(row.ecus)),
        reads=tuple(json.loads(row.reads)),
        clear_dtcs=bool(row.clear_dtcs),
        completed_ms=row.completed_ms,
        report=json.loads(row.report) if row.report is not None else None,
        error=row.error,
    )


class SqlDiagSessions:
    """The `DiagSessionStore` port on any SQLAlchemy engine."""

    def __init__(self, engine: Engine, dialect: Dialect) -> None:
        self._engine = engine
        self._dialect = dialect

    def add(self, session: DiagSession, requests: Sequence[DiagRequestRow]) -> None:
        values = {
            "id": session.id,
            "vehicle_id": session.vehicle_id,
            "brand_id": session.brand,
            "requested_by": session.requested_by,
            "created_ms": session.created_ms,
            "expires_ms": session.expires_ms,
            "status": session.status,
            "ecus": json.dumps(list(session.ecus)),
            "reads": json.dumps(list(session.reads)),
            "clear_dtcs": session.clear_dtcs,
            "report": None,
            "error": session.error,
        }
        rows = [
            {
                "id": r.id,
                "session_id": session.id,
                "position": r.position,
                "ecu": r.ecu,
                "read": r.read,
                "request": r.request,
            }
            for r in requests
        ]
        with translated(), self._engine.begin() as conn:
            conn.execute(diag_sessions.insert().values(**values))
            if rows:
                conn.execute(diag_requests.insert(), rows)

    def _select(self) -> Any:
        return select(*_COLUMNS).join(vehicles, vehicles.c.id == diag_sessions.c.vehicle_id)

    def get(self, session_id: str) -> DiagSession | None:
        query = self._select().where(diag_sessions.c.id == session_id)
        with translated(), self._engine.connect() as conn:
            row = conn.execute(query).first()
        return _session(row) if row is not None else None

    def page(self, vehicle_id: int, *, before: str | None, limit: int) -> list[DiagSession]:
        query = self._select().where(diag_sessions.c.vehicle_id == vehicle_id)
        with translated(), self._engine.connect() as conn:
            if before is not None:
                last = conn.execute(
                    select(diag_sessions.c.created_ms).where(
                        diag_sessions.c.id == before, diag_sessions.c.vehicle_id == vehicle_id
                    )
                ).scalar_one_or_none()
                if last is None:
                    return []
                query = query.where(
                    or_(
                        diag_sessions.c.created_ms < last,
                        and_(diag_sessions.c.created_ms == last, diag_sessions.c.id < before),
                    )
                )
            query = query.order_by(
                diag_sessions.c.created_ms.desc(), diag_sessions.c.id.desc()
            ).limit(limit)
            return [_session(r) for r in conn.execute(query)]

    def requests(self, session_id: str) -> list[DiagRequestRow]:
        query = (
            select(diag_requests)
            .where(diag_requests.c.session_id == session_id)
            .order_by(diag_requests.c.position)
        )
        with translated(), self._engine.connect() as conn:
            return [
                DiagRequestRow(r.id, r.position, r.ecu, r.read, r.request)
                for r in conn.execute(query)
            ]

    def answers(self, vehicle_id: int, request_ids: Sequence[str]) -> list[DiagAnswer]:
        if not request_ids:
            return []
        query = (
            select(diag_responses)
            .where(
                diag_responses.c.vehicle_id == vehicle_id,
                diag_responses.c.request_id.in_(list(request_ids)),
            )
            .order_by(diag_responses.c.id)
        )
        with translated(), self._engine.connect() as conn:
            return [
                DiagAnswer(r.request_id, r.ecu, r.response, r.ts, r.received_ms)
                for r in conn.execute(query)
            ]

    def finish(
        self,
        session_id: str,
        status: str,
        now_ms: int,
        report: dict[str, Any] | None,
        error: str | None = None,
    ) -> bool:
        statement = (
            update(diag_sessions)
            .where(diag_sessions.c.id == session_id, diag_sessions.c.status == "pending")
            .values(
                status=status,
                completed_ms=now_ms,
                report=json.dumps(report) if report is not None else None,
                error=error,
            )
        )
        with translated(), self._engine.begin() as conn:
            return conn.execute(statement).rowcount == 1

    def pending(self) -> list[tuple[str, int]]:
        query = select(diag_sessions.c.id, diag_sessions.c.expires_ms).where(
            diag_sessions.c.status == "pending"
        )
        with translated(), self._engine.connect() as conn:
            return [(r.id, r.expires_ms) for r in conn.execute(query)]
