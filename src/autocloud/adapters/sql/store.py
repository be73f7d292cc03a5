"""One object that offers every storage port on one database."""

from sqlalchemy import Engine

from autocloud.adapters.sql.dialect import Dialect
from autocloud.adapters.sql.migrate import upgrade
from autocloud.adapters.sql.registry import SqlRegistry
from autocloud.adapters.sql.telemetry import SqlTelemetry


class SqlStore:
    """Registry, telemetry and dead letters on one SQLAlchemy engine."""

    def __init__(self, engine: Engine, dialect: Dialect) -> None:
        self.engine = engine
        self.dialect = dialect
        self.registry = SqlRegistry(engine, dialect)
        self.telemetry = SqlTelemetry(engine, dialect)

    def migrate(self) -> None:
        """Bring the schema to the newest migration."""
        upgrade(self.engine)

    def close(self) -> None:
        self.engine.dispose()
