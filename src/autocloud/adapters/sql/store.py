"""One object that offers every storage port on one database."""

from sqlalchemy import Engine

from autocloud.adapters.sql import (
    alerts,
    command_keys,
    commands,
    diag_sessions,
    diagnostics,
    webhooks,
)
from autocloud.adapters.sql.dialect import DeferredSync, Dialect
from autocloud.adapters.sql.extras import Writers
from autocloud.adapters.sql.gateways import SqlGateways
from autocloud.adapters.sql.migrate import upgrade
from autocloud.adapters.sql.registry import SqlRegistry
from autocloud.adapters.sql.telemetry import SqlTelemetry
from autocloud.domain.alerts import AlertChanges, PendingChanges
from autocloud.domain.dtc_active import DtcUpdate
from autocloud.domain.protocol import CommandResult, DiagResponse, KeyListResult


def ingest_writers() -> Writers:
    """What each feature writes in the ingest transaction, besides telemetry (one table)."""
    writers = Writers()
    # Features register here, one line each: writers.reply(CommandResult, commands.write_results)
    writers.reply(DiagResponse, diag_sessions.write_responses)
    writers.reply(CommandResult, commands.write_results)
    writers.reply(KeyListResult, command_keys.write_key_list_results)
    writers.record(DtcUpdate, diagnostics.write_dtc_updates)
    writers.record(AlertChanges, alerts.write_alert_changes)
    writers.record(PendingChanges, alerts.write_pending_changes)
    return writers


class SqlStore:
    """Registry, telemetry, dead letters and the features' stores on one SQLAlchemy engine."""

    def __init__(
        self, engine: Engine, dialect: Dialect, *, deferred: DeferredSync | None = None
    ) -> None:
        """`deferred`: how ingest may commit without waiting for the disk (None: it waits)."""
        self.engine = engine
        self.dialect = dialect
        self._deferred = deferred
        self.registry = SqlRegistry(engine, dialect)
        self.telemetry = SqlTelemetry(engine, dialect, ingest_writers(), deferred=deferred)
        self.diag_sessions = diag_sessions.SqlDiagSessions(engine, dialect)
        self.webhooks = webhooks.SqlWebhooks(engine, dialect)
        self.gateways = SqlGateways(engine, dialect)
        self.commands = commands.SqlCommands(engine, dialect, self.telemetry.signal_ids)
        self.dtcs = diagnostics.SqlDiagnostics(engine)
        self.alerts = alerts.SqlAlerts(engine)
        self.key_lists = command_keys.SqlKeyLists(engine)  # what cars confirmed of key lists

    def migrate(self) -> None:
        """Bring the schema to the newest migration."""
        upgrade(self.engine)

    def close(self) -> None:
        if self._deferred is not None:
            self._deferred.close()
        self.engine.dispose()
