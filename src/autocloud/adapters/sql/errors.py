"""Turns database driver failures into the project's StoreUnavailable."""

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy.exc import DBAPIError, OperationalError

from autocloud.domain.errors import StoreUnavailable


@contextmanager
def translated() -> Iterator[None]:
    """Re-raise connection and operational failures as StoreUnavailable."""
    try:
        yield
    except OperationalError as exc:
        raise StoreUnavailable(f"database unavailable: {exc.orig}") from exc
    except DBAPIError as exc:
        if exc.connection_invalidated:
            raise StoreUnavailable(f"database connection lost: {exc.orig}") from exc
        raise
