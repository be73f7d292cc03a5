"""The one place that builds adapters from settings and wires them into the services.

Nothing else imports a concrete adapter. `build()` returns a `Platform` whose `start()`
brings up the broker edge and ingest, and whose `stop()` takes them down in reverse order.
"""

import gc
import logging
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from autocloud.adapters.sql.store import SqlStore
from autocloud.domain.access import Principal, Role
from autocloud.domain.catalog import Catalog
from autocloud.domain.clock import Clock, SystemClock
from autocloud.domain.dtc_catalog import DtcCatalog, load_catalog
from autocloud.domain.errors import ConfigurationError, StoreUnavailable
from autocloud.domain.protocol import Topic
from autocloud.domain.secrets import new_secret
from autocloud.ports.gateways import GatewayAccess
from autocloud.ports.link import VehicleAccess, VehicleLink
from autocloud.services.alert_stage import AlertStage
from autocloud.services.alerts import AlertService
from autocloud.services.command_keys import KeyLists
from autocloud.services.commands import CommandService
from autocloud.services.diagnostic_sessions import DiagnosticSessions
from autocloud.services.diagnostics import DiagnosticsService, DtcStage
from autocloud.services.fanout import Hub
from autocloud.services.gateways import DeferredGatewayAccess, GatewayService
from autocloud.services.ingest.service import IngestService, Pipeline
from autocloud.services.mapdata import MapData
from autocloud.services.metrics import Metrics
from autocloud.services.positions import PositionFeed, PositionsService
from autocloud.services.pulse import FleetPulse
from autocloud.services.registry import RegistryService
from autocloud.services.telemetry import TelemetryService
from autocloud.services.webhooks import RetryPolicy, WebhookService
from autocloud.settings import Settings

if TYPE_CHECKING:
    from autocloud.adapters.mqtt_retire import Drained

log = logging.getLogger(__name__)

ADMIN_TOKEN_FILE = "admin-token"
PLATFORM_SECRET_FILE = "platform-secret"
COMMAND_KEY_FILE = "command-signing-key.pem"
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
    commands: CommandService | None = None  # remote commands (services/commands.py)
    gateways: GatewayService | None = None  # fleet-gateway credentials (services/gateways.py)
    # Features beyond the core add their services below (one field each, built in `build`).
    mapdata: MapData | None = None  # the dashboard's base map (routes_dashboard)
    pulse: FleetPulse | None = None  # vehicles online and messages/s over time (dashboard)
    diagnostics: DiagnosticSessions | None = None  # remote UDS sessions (routes_diag)
    webhooks: WebhookService | None = None  # signed webhooks (routes_webhooks)
    health: DiagnosticsService | None = None  # active DTCs, vehicle and fleet health
    alerts: AlertService | None = None  # alert rules and alerts (stage in the pipeline)
    key_lists: KeyLists | None = None  # what each car confirmed of its key lists
    positions: PositionsService | None = None  # the fleet map's snapshot and live positions
    _retention: threading.Event = field(default_factory=threading.Event)

    def start(self, *, ingest: bool = True) -> None:
        """Start the broker edge (embedded or Mosquitto) and the ingest worker."""
        host, port = self.settings.mqtt_host_port
        from autocloud.adapters.mqtt_link import MqttLink

        embedded = self.settings.broker_kind == "embedded"
        if ingest:
            self.ingest.start()
        if embedded:
            from autocloud.adapters.amqtt_broker import (
                EmbeddedAccess,
                EmbeddedBroker,
                EmbeddedGatewayAccess,
            )
            from autocloud.adapters.amqtt_link import EmbeddedLink

            broker = EmbeddedBroker(
                host=host,
                port=port,
                verify_vehicle=self.registry.verify_vehicle,
                verify_gateway=self.gateways.verify if self.gateways is not None else None,
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
            if self.gateways is not None:
                self.gateways.connect_broker(EmbeddedGatewayAccess(broker))
            port = broker.port
        if ingest:
            link = MqttLink(
                host,
                port,
                username=self.settings.platform_user,
                password=self.platform_password,
                client_id=consumer_client_id(self.settings.consumer_id),
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
        self._stops.append(self.metrics.watch_gc())
        if self.commands is not None:  # sends to returning vehicles, expires, notifies
            self.commands.delivery.start()
            self._stops.append(self.commands.delivery.stop)

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


def freeze_startup_heap() -> None:
    """Keep what start-up built out of the cyclic garbage collector's full collections.

    The signal catalog, the DTC catalog, the map and the imported modules are hundreds of
    thousands of objects that live as long as the process. Every full (generation 2) collection
    walked all of them, pausing every thread for up to ~100 ms (measured in-process), which
    showed as the tail of publish-to-twin latency: p99 208-241 ms without this, 105-109 ms
    with it, same bench and hour (BENCHMARKS.md). Frozen, they are never walked; refcounting
    still frees them if they go. Call once, when the platform is up.
    """
    gc.collect()
    gc.freeze()


def consumer_client_id(consumer_id: str) -> str:
    """The MQTT client id, and so the persistent broker session, of one consumer process."""
    return f"autocloud-ingest-{consumer_id}"


def retire_consumer(
    platform: Platform, *, stall_s: float = 60.0, progress: Callable[[int, int], None] | None = None
) -> "Drained":
    """Ingest what Mosquitto holds for consumer `settings.consumer_id`, then end its session.

    For a consumer id that is no longer run (see `adapters/mqtt_retire.py`): its queued
    messages go through this platform's ingest (acknowledged only once stored), then the session
    is deleted, so the shared subscription stops giving it a share. `platform` is built, not
    started; the consumer itself must be stopped. Fails on any error; the session may then
    remain, holding at most messages already stored, and running it again is safe.
    """
    from autocloud.adapters.mqtt_link import subscriptions
    from autocloud.adapters.mqtt_retire import RetiringSession

    settings = platform.settings
    if settings.broker_kind != "mosquitto":
        raise ConfigurationError(
            "retiring a consumer applies to a Mosquitto broker (single-node tier): the embedded "
            "broker has one consumer and no shared subscription"
        )
    host, port = settings.mqtt_host_port
    session = RetiringSession(
        host,
        port,
        username=settings.platform_user,
        password=platform.platform_password,
        client_id=consumer_client_id(settings.consumer_id),
        filters=[f for shared in (True, False) for f, _ in subscriptions(shared)],
    )
    try:
        platform.ingest.start(session)
        drained = session.drain(stall_s=stall_s, progress=progress)
        session.end()
    finally:
        platform.ingest.stop()
    return drained


def _forget_in_ingest(pipeline: Pipeline) -> Callable[[int], Callable[[], None]]:
    """A removal hook: once the vehicle is deleted, ingest stops attributing its VIN to it."""

    def hook(vehicle_id: int) -> Callable[[], None]:
        return lambda: pipeline.authorise.forget_vehicle(vehicle_id)

    return hook


def _forget_position(
    feed: PositionFeed, vin_of: Callable[[int], str | None]
) -> Callable[[int], Callable[[], None]]:
    """A removal hook: once the vehicle is deleted, the live positions feed drops its row."""

    def hook(vehicle_id: int) -> Callable[[], None]:
        vin = vin_of(vehicle_id)
        return (lambda: feed.forget(vin)) if vin is not None else (lambda: None)

    return hook


def build(settings: Settings, *, clock: Clock | None = None) -> Platform:
    """Build the platform that `settings` describe (nothing is started yet)."""
    clock = clock or SystemClock()
    store = open_store(settings.db_url)
    catalog = Catalog.builtin(settings.vss_path)
    metrics = Metrics()
    hub = Hub()
    password = settings.platform_password or _secret_file(settings.data_dir / PLATFORM_SECRET_FILE)
    access: VehicleAccess
    gateway_access: GatewayAccess = DeferredGatewayAccess()  # the embedded broker, once started
    closers: list[Callable[[], None]] = []
    if settings.broker_kind == "mosquitto":
        from autocloud.adapters.mosquitto import MosquittoDynsec

        host, port = settings.mqtt_host_port
        dynsec = MosquittoDynsec(
            host, port, settings.broker_admin_user, settings.broker_admin_password
        )
        dynsec.ensure_platform_client(settings.platform_user, password)
        access = dynsec
        gateway_access = dynsec
        closers.append(dynsec.close)
    else:
        access = _LateAccess()
    registry = RegistryService(store.registry, access, clock)
    telemetry = TelemetryService(store.telemetry, store.telemetry, registry, catalog, clock)
    dtc_stage, alert_stage, dtc_catalog = _diagnostic_stages(settings, store, hub)
    pipeline = Pipeline(
        store.telemetry,
        catalog,
        metrics,
        max_payload_bytes=settings.max_payload_bytes,
        max_future_skew_ms=settings.max_future_skew_s * 1000,
        after_record=[("dtc", dtc_stage), ("alerts", alert_stage)],  # alerts see DTC updates
    )
    ingest = IngestService(
        store.telemetry,
        pipeline,
        hub,
        metrics,
        clock,
        batch=settings.ingest_batch,
        wait_ms=settings.ingest_wait_ms,
        deferred_sync=settings.ingest_deferred_sync,
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
    platform.commands = _commands(platform)
    platform.key_lists = KeyLists(store.key_lists, registry)
    platform.diagnostics = DiagnosticSessions(
        store.diag_sessions,
        registry,
        telemetry,
        platform.send,
        hub,
        clock,
        timeout_s=settings.diag_timeout_s,
    )
    ingest.after_commit.append(platform.diagnostics.on_commit)
    platform.diagnostics.start()
    platform._stops.append(platform.diagnostics.stop)
    from autocloud.adapters.webhook_http import HttpWebhookSender

    platform.webhooks = WebhookService(
        store.webhooks,
        HttpWebhookSender(settings.webhook_timeout_s, pool=settings.webhook_workers),
        clock,
        RetryPolicy(
            settings.webhook_max_attempts,
            settings.webhook_backoff_s,
            settings.webhook_backoff_max_s,
            settings.webhook_timeout_s,
            settings.webhook_workers,
            settings.webhook_allow_private,
        ),
    )
    platform.webhooks.start(hub)
    platform._stops.append(platform.webhooks.stop)
    platform.gateways = GatewayService(store.gateways, gateway_access, clock)
    registry.before_remove.append(platform.gateways.vehicle_removing)
    registry.before_remove.append(_forget_in_ingest(pipeline))
    from autocloud.adapters import osm_map

    platform.mapdata = MapData(
        settings.map_path, settings.data_dir / "map", osm_map.roads_geojson, osm_map.encode
    )
    from autocloud.adapters.sql import pulse

    platform.pulse = FleetPulse(lambda: pulse.fleet_counts(store.engine), clock)
    ingest.after_commit.append(platform.pulse.on_commit)
    platform._stops.append(platform.pulse.stop)
    ingest.after_commit.extend([dtc_stage.committed, alert_stage.committed])
    platform.health = DiagnosticsService(store.dtcs, registry, dtc_catalog)
    platform.alerts = AlertService(store.alerts, alert_stage, registry, catalog, hub, clock)
    from autocloud.adapters.sql.positions import SqlPositions

    feed = PositionFeed()
    ingest.after_commit.append(feed.on_commit)
    registry.before_remove.append(_forget_position(feed, store.commands.vin_of))
    platform.positions = PositionsService(
        SqlPositions(store.engine, store.telemetry.signal_ids, store.dialect.body),
        feed,
        clock.now_ms,
    )
    return platform


def _diagnostic_stages(
    settings: Settings, store: SqlStore, hub: Hub
) -> tuple[DtcStage, AlertStage, DtcCatalog]:
    """The DTC and alert-rule ingest stages; open alerts are restored from the store."""
    path = settings.dtc_catalog_path
    dtc_catalog = load_catalog(path) if path is not None else DtcCatalog()
    alert_stage = AlertStage(store.alerts, hub)
    alert_stage.restore()
    return DtcStage(store.dtcs, hub, dtc_catalog), alert_stage, dtc_catalog


def _commands(platform: Platform) -> CommandService:
    """Remote commands: the signing key in data_dir, delivery through `platform.send`."""
    from autocloud.adapters.keyfile import load_or_create
    from autocloud.services.command_delivery import Delivery
    from autocloud.services.commands import Limits

    s = platform.settings
    signer = load_or_create(s.data_dir / COMMAND_KEY_FILE)
    store = platform.store.commands
    delivery = Delivery(store, signer, platform.send, platform.hub, platform.clock)
    platform.ingest.after_commit.append(delivery.after_commit)
    limits = Limits(s.command_min_soc_pct, s.command_rate_per_vehicle, s.command_rate_per_caller)
    service = CommandService(store, platform.registry, delivery, signer, platform.clock, limits)
    platform.registry.owner_leaving.append(service.owner_leaving)  # an owner's keys go too
    platform.registry.before_remove.append(service.vehicle_removing)
    return service
