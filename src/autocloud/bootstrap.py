"""The one place that builds adapters from settings and wires them into the services.

Nothing else imports a concrete adapter. `build()` returns a `Platform` whose `start()`
brings up the broker edge and ingest, and whose `stop()` takes them down in reverse order.
"""

import logging
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from autocloud.adapters.sql.store import SqlStore
from autocloud.domain.access import Principal, Role
from autocloud.domain.catalog import Catalog
from autocloud.domain.clock import Clock, SystemClock
from autocloud.domain.errors import StoreUnavailable
from autocloud.domain.protocol import Topic
from autocloud.domain.secrets import new_secret
from autocloud.ports.link import VehicleAccess, VehicleLink
from autocloud.services.fanout import Hub
from autocloud.services.ingest.service import IngestService, Pipeline
from autocloud.services.metrics import Metrics
from autocloud.services.registry import RegistryService
from autocloud.services.telemetry import TelemetryService
from autocloud.settings import Settings

log = logging.getLogger(__name__)

ADMIN_TOKEN_FILE = "admin-token"
PLATFORM_SECRET_FILE = "platform-secret"
SYSTEM = Principal("system", Role.ADMIN, None)


def open_store(db_url: str) -> SqlStore:
    """The SQL store the URL names, migrated to the newest schema."""
    if db_url.startswith("postgresql"):
        from autocloud.adapters import postgres

        return postgres.open_store(db_url)
    from autocloud.adapters import sqlite

    return sqlite.open_store(db_url)


def _secret_file(path: Path) -> str:
    """Read a generated secret, or make one (mode 0600) on first start."""
    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    secret = new_secret()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(secret + "\n")
    return secret


class _LateAccess:
    """VehicleAccess whose real adapter exists only once the broker runs (embedded tier)."""

    def __init__(self) -> None:
        self.target: VehicleAccess | None = None

    def grant(self, vin: str, secret: str) -> None:
        if self.target is not None:
            self.target.grant(vin, secret)

    def revoke(self, vin: str) -> None:
        if self.target is not None:
            self.target.revoke(vin)


@dataclass
class Platform:
    """Everything one Autocloud process runs, wired."""

    settings: Settings
    store: SqlStore
    catalog: Catalog
    clock: Clock
    metrics: Metrics
    hub: Hub
    registry: RegistryService
    telemetry: TelemetryService
    ingest: IngestService
    access: VehicleAccess
    platform_password: str
    _stops: list[Callable[[], None]] = field(default_factory=list)
    # The link that carries cloud-to-vehicle messages (commands, diagnostic requests); set by
    # start(). Features send through `send()`, never through an adapter of their own.
    _outbound: VehicleLink | None = None
    # Features beyond the core add their services below (one field each, built in `build`).
    _retention: threading.Event = field(default_factory=threading.Event)

    def start(self, *, ingest: bool = True) -> None:
        """Start the broker edge (embedded or Mosquitto) and the ingest worker."""
        host, port = self.settings.mqtt_host_port
        from autocloud.adapters.mqtt_link import MqttLink

        embedded = self.settings.broker_kind == "embedded"
        if ingest:
            self.ingest.start()
        if embedded:
            from autocloud.adapters.amqtt_broker import EmbeddedAccess, EmbeddedBroker
            from autocloud.adapters.amqtt_link import EmbeddedLink

            broker = EmbeddedBroker(
                host=host,
                port=port,
                verify_vehicle=self.registry.verify_vehicle,
                platform_user=self.settings.platform_user,
                platform_password=self.platform_password,
            )
            tap = EmbeddedLink(broker)
            self._outbound = tap
            if ingest:  # before the broker listens: no vehicle connects untapped
                self.ingest.attach(tap)
            broker.start()
            self._stops.append(broker.stop)
            assert isinstance(self.access, _LateAccess)
            self.access.target = EmbeddedAccess(broker)
            port = broker.port
        if ingest:
            link = MqttLink(
                host,
                port,
                username=self.settings.platform_user,
                password=self.platform_password,
                client_id=f"autocloud-ingest-{self.settings.consumer_id}",
                mqtt5=not embedded,
                # Embedded: vehicle messages come through the EmbeddedLink tap; states
                # (retained, idempotent) are acknowledged on receipt, because amqtt gives
                # a subscriber only 5 s to acknowledge before it drops the delivery.
                topics=(Topic.STATE,) if embedded else tuple(Topic),
                manual_ack=not embedded,
            )
            self.ingest.attach(link)
            if self._outbound is None:
                self._outbound = link
            self._stops.append(self.ingest.stop)
        self._start_retention()

    def _start_retention(self) -> None:
        def run() -> None:
            while not self._retention.wait(3600):
                try:
                    self.telemetry.purge(
                        self.settings.history_retention_days,
                        self.settings.dead_letter_retention_days,
                    )
                except Exception:
                    log.exception("retention purge failed; retrying in an hour")

        threading.Thread(target=run, name="retention", daemon=True).start()
        self._stops.append(self._retention.set)

    def send(self, vin: str, subtopic: str, payload: bytes, *, retain: bool = False) -> None:
        """Publish a cloud-to-vehicle message at QoS 1 to `vehicles/{vin}/{subtopic}`."""
        if self._outbound is None:
            raise StoreUnavailable(
                "this process has no broker link to send to vehicles: start it with ingest on"
            )
        self._outbound.send(vin, subtopic, payload, retain=retain)

    @property
    def mqtt_url(self) -> str:
        host, port = self.settings.mqtt_host_port
        return f"mqtt://{host}:{port}"

    def stop(self) -> None:
        while self._stops:
            self._stops.pop()()
        self.store.close()

    def ensure_admin_token(self) -> str | None:
        """On first start, issue a group admin token into data_dir; return it if new."""
        if self.store.registry.tokens(None):
            return None
        _, token = self.registry.issue_token("bootstrap-admin", Role.ADMIN, None)
        path = self.settings.data_dir / ADMIN_TOKEN_FILE
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(token + "\n")
        return token


def build(settings: Settings, *, clock: Clock | None = None) -> Platform:
    """Build the platform that `settings` describe (nothing is started yet)."""
    clock = clock or SystemClock()
    store = open_store(settings.db_url)
    catalog = Catalog.builtin(settings.vss_path)
    metrics = Metrics()
    hub = Hub()
    password = settings.platform_password or _secret_file(settings.data_dir / PLATFORM_SECRET_FILE)
    access: VehicleAccess
    closers: list[Callable[[], None]] = []
    if settings.broker_kind == "mosquitto":
        from autocloud.adapters.mosquitto import MosquittoDynsec

        host, port = settings.mqtt_host_port
        dynsec = MosquittoDynsec(
            host, port, settings.broker_admin_user, settings.broker_admin_password
        )
        dynsec.ensure_platform_client(settings.platform_user, password)
        access = dynsec
        closers.append(dynsec.close)
    else:
        access = _LateAccess()
    registry = RegistryService(store.registry, access, clock)
    telemetry = TelemetryService(store.telemetry, store.telemetry, registry, catalog, clock)
    pipeline = Pipeline(
        store.telemetry,
        catalog,
        metrics,
        max_payload_bytes=settings.max_payload_bytes,
        max_future_skew_ms=settings.max_future_skew_s * 1000,
    )
    ingest = IngestService(
        store.telemetry,
        pipeline,
        hub,
        metrics,
        clock,
        batch=settings.ingest_batch,
        wait_ms=settings.ingest_wait_ms,
    )
    metrics.connected.set_function(store.telemetry.online_count)
    platform = Platform(
        settings=settings,
        store=store,
        catalog=catalog,
        clock=clock,
        metrics=metrics,
        hub=hub,
        registry=registry,
        telemetry=telemetry,
        ingest=ingest,
        access=access,
        platform_password=password,
        _stops=closers,
    )
    # Features wire themselves here, one block each, after the core exists.
    return platform
