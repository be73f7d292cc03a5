"""A send lock whose unlock fails must not go back to the pool still held.

`vehicle_lock` takes a session-level `pg_advisory_lock` on a pooled connection. When the
`pg_advisory_unlock` in its `finally` failed (a cancelled statement, a statement timeout),
the connection went back to the pool with the lock still held by its session: every later
send to that vehicle, from every process, waited on `pg_advisory_lock` (no timeout) until
that pooled connection happened to be closed. The connection must be discarded instead
(closing the session releases its advisory locks).
"""

from types import SimpleNamespace
from typing import Any, cast

import pytest
from sqlalchemy import create_engine, event, text

from autocloud.adapters.sql.command_keys import LOCK_CLASS, vehicle_lock
from autocloud.adapters.sql.dialect import Dialect

POSTGRES = cast(Dialect, SimpleNamespace(name="postgresql"))


def test_a_failed_unlock_releases_the_lock_with_the_session(pg_url: str) -> None:
    engine = create_engine(pg_url, pool_size=1, max_overflow=0)
    other = create_engine(pg_url)
    fail = [True]

    @event.listens_for(engine, "before_cursor_execute")
    def cancelled(_c: Any, _cur: Any, statement: str, *_a: Any) -> None:
        if "pg_advisory_unlock" in statement and fail[0]:
            fail[0] = False
            raise RuntimeError("canceling statement due to statement timeout")

    try:
        with pytest.raises(RuntimeError), vehicle_lock(engine, POSTGRES, 7):
            pass
        with other.connect() as conn:
            free = conn.execute(
                text("SELECT pg_try_advisory_lock(:c, :v)"), {"c": LOCK_CLASS, "v": 7}
            ).scalar_one()
            conn.execute(text("SELECT pg_advisory_unlock_all()"))
        assert free, "the vehicle's send lock stayed with a pooled connection"
        with vehicle_lock(engine, POSTGRES, 7):  # and the pool still serves
            pass
    finally:
        engine.dispose()
        other.dispose()


def test_a_lock_held_elsewhere_times_out_as_store_unavailable(
    pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A holder stuck on a dead session must not stall senders forever."""
    from autocloud.adapters.sql import command_keys
    from autocloud.domain.errors import StoreUnavailable

    monkeypatch.setattr(command_keys, "LOCK_TIMEOUT_MS", 200)
    engine = create_engine(pg_url)
    holder = create_engine(pg_url)
    try:
        with holder.connect() as conn:
            conn.execute(text("SELECT pg_advisory_lock(:c, :v)"), {"c": LOCK_CLASS, "v": 8})
            conn.commit()
            with (
                pytest.raises(StoreUnavailable, match="held elsewhere"),
                vehicle_lock(engine, POSTGRES, 8),
            ):
                pass
            conn.execute(text("SELECT pg_advisory_unlock_all()"))
            conn.commit()
        with vehicle_lock(engine, POSTGRES, 8):  # free again, and the pool still serves
            pass
    finally:
        engine.dispose()
        holder.dispose()
