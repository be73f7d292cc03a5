"""One object that offers every storage port on one database."""

from sqlalchemy import Engine

from autocloud.adapters.sql.dialect import Dialect
from autocloud.adapters.sql.extras import Writers
from autocloud.adapters.sql.migrate import upgrade
from autocloud.adapters.sql.registry import SqlRegistry
from autocloud.adapters.sql.telemetry import SqlTelemetry


def ingest_writers() -> Writers:
    """What each feature writes in the ingest transaction, besides telemetry (one table)."""
    writers = Writers()
    # Features register here, one line each: writers.reply(CommandResult, commands.write_results)
    return writers


class SqlStore:
    """Registry, telemetry, dead letters and the features' stores on one SQLAlchemy engine."""

    def __init__(self, engine: Engine, dialect: Dialect) -> None:
        self.engine = engine
        self.dialect = dialect
        self.registry = SqlRegistry(engine, dialect)
        self.telemetry = SqlTelemetry(engine, dialect, ingest_writers())

    def migrate(self) -> None:
        """Bring the schema to the newest migration."""
        upgrade(self.engine)

    def close(self) -> None:
        self.engine.dispose()
