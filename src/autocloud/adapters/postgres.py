"""PostgreSQL adapter: the single-node and cluster tiers' state and history (psycopg 3)."""

from sqlalchemy import Engine, create_engine
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.exc import OperationalError

from autocloud.adapters.sql.dialect import Dialect
from autocloud.adapters.sql.store import SqlStore
from autocloud.domain.errors import StoreUnavailable

DIALECT = Dialect(name="postgresql", insert=insert)


def create(url: str) -> Engine:
    return create_engine(url, pool_size=8, max_overflow=8, pool_pre_ping=True)


def open_store(url: str) -> SqlStore:
    """Open (and migrate) the PostgreSQL database at `url`."""
    store = SqlStore(create(url), DIALECT)
    try:
        store.migrate()
    except OperationalError as exc:
        raise StoreUnavailable(
            f"cannot reach PostgreSQL at {store.engine.url.render_as_string(hide_password=True)}: "
            f"{exc.orig}. Is the server running and the database created?"
        ) from None
    return store
