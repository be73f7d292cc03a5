"""The store of remote diagnostic sessions (values in `domain/diag_session.py`).

Adapter: `adapters/sql/diag_sessions.py` (SQLite and PostgreSQL); contract tests in
`tests/contract/test_diag_sessions_contract.py`.
"""

from collections.abc import Sequence
from typing import Any, Protocol

from autocloud.domain.diag_session import DiagAnswer, DiagRequestRow, DiagSession

__all__ = ["DiagAnswer", "DiagRequestRow", "DiagSession", "DiagSessionStore"]


class DiagSessionStore(Protocol):
    def add(self, session: DiagSession, requests: Sequence[DiagRequestRow]) -> None: ...
    def get(self, session_id: str) -> DiagSession | None: ...
    def page(self, vehicle_id: int, *, before: str | None, limit: int) -> list[DiagSession]:
        """Newest first; `before` is the id of the last session of the previous page."""
        ...

    def requests(self, session_id: str) -> list[DiagRequestRow]: ...
    def answers(self, vehicle_id: int, request_ids: Sequence[str]) -> list[DiagAnswer]:
        """The stored responses to these requests, oldest first."""
        ...

    def finish(
        self,
        session_id: str,
        status: str,
        now_ms: int,
        report: dict[str, Any] | None,
        error: str | None = None,
    ) -> bool:
        """Close a pending session; False when it was not pending (someone closed it)."""
        ...

    def pending(self) -> list[tuple[str, int]]:
        """(session id, expires_ms) of every pending session."""
        ...
