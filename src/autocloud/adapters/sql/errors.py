"""Turns database driver failures into the project's StoreUnavailable."""

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from autocloud.domain.errors import StoreUnavailable


@contextmanager
def translated() -> Iterator[None]:
    """Re-raise connection and operational failures as StoreUnavailable."""
    try:
        yield
    except PoolTimeout as exc:
        raise StoreUnavailable(f"no free database connection: {exc}") from exc
    except OperationalError as exc:
        raise StoreUnavailable(f"database unavailable: {exc.orig}") from exc
    except DBAPIError as exc:
        if exc.connection_invalidated:
            raise StoreUnavailable(f"database connection lost: {exc.orig}") from exc
        raise
