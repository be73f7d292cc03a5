"""One typed settings object for every tier.

Sources, strongest first: explicit values (CLI flags), environment variables
`AUTOCLOUD_*`, a TOML file (`AUTOCLOUD_CONFIG` or `--config`), then the embedded defaults.
Invalid combinations fail at start with a message that says what to change.
"""

import os
import tomllib
from contextvars import ContextVar
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from autocloud.domain.errors import ConfigurationError

BrokerKind = Literal["embedded", "mosquitto"]
_CONFIG_FILE: ContextVar[Path | None] = ContextVar("autocloud_config_file", default=None)


class Settings(BaseSettings):
    """Everything the platform needs to start; see docs/configuration.md."""

    model_config = SettingsConfigDict(env_prefix="AUTOCLOUD_", extra="forbid")

    data_dir: Path = Field(Path("var"), description="Where SQLite files and generated state live.")
    db: str = Field(
        "", description="sqlite:///path or postgresql://user@host/db; default SQLite in data_dir."
    )
    broker: str = Field(
        "embedded", description="'embedded' (amqtt in-process) or mqtt://host:port of Mosquitto."
    )
    embedded_broker_port: int = Field(
        1884, ge=1, le=65535, description="1884, so it runs beside a Mosquitto on 1883."
    )
    broker_admin_user: str = Field("admin", description="Mosquitto dynamic-security admin.")
    broker_admin_password: str = Field("", description="Password of the dynsec admin.")
    platform_user: str = Field("autocloud-platform", description="The platform's own MQTT login.")
    platform_password: str = Field("", description="Generated into data_dir when empty.")
    api_host: str = "127.0.0.1"
    api_port: int = Field(8080, ge=1, le=65535)
    vss_path: Path | None = Field(
        None, description="VSS release JSON; when set, every leaf of it is accepted as a signal."
    )
    map_path: Path | None = Field(
        None,
        description="OSM file (.osm or .osm.pbf) the fleet drives on: the dashboard's base map. "
        "`autocloud demo` sets it to its generated town.",
    )
    dtc_catalog_path: Path | None = Field(
        None,
        description="DTC descriptions, a JSON array of {Code, Description}; without it codes "
        "are still decoded and graded, only undescribed.",
    )
    max_payload_bytes: int = Field(128 * 1024, ge=256)
    max_future_skew_s: int = Field(300, ge=0)
    ingest_batch: int = Field(2000, ge=1, description="Most messages written in one transaction.")
    ingest_wait_ms: int = Field(2, ge=0, description="Longest wait to fill a batch.")
    ingest_deferred_sync: bool = Field(
        True,
        description="SQLite: commit ingest batches without an fsync of their own and "
        "acknowledge them after one fsync on another thread for all batches since the last "
        "(group sync). Off: every commit waits for its own fsync on the ingest thread.",
    )
    switch_interval_ms: float = Field(
        1.0,
        gt=0,
        le=100,
        description="How long a thread of the platform waits for the interpreter that another "
        "holds before asking for it (Python's switch interval, 5 ms by default): the API's "
        "event loop and the broker link wait at most this long behind the ingest thread.",
    )
    consumer_id: str = Field(
        "0",
        pattern=r"^[A-Za-z0-9_-]{1,32}$",
        description="Names this process's persistent broker session; one per consumer process.",
    )
    command_min_soc_pct: float = Field(
        20.0, ge=0, le=100, description="Remote climate is refused below this battery level."
    )
    command_rate_per_vehicle: int = Field(
        30, ge=1, description="Commands a vehicle takes per minute (token bucket; burst = rate)."
    )
    command_rate_per_caller: int = Field(
        600, ge=1, description="Commands one API token may send per minute (token bucket)."
    )
    stream_max_per_token: int = Field(
        20, ge=1, description="Live streams one API token may hold open at once (429 beyond)."
    )
    history_retention_days: float = Field(90, gt=0)
    dead_letter_retention_days: float = Field(30, gt=0)
    diag_timeout_s: float = Field(
        30, gt=0, le=3600, description="How long a remote diagnostic session waits for ECUs."
    )
    webhook_max_attempts: int = Field(8, ge=1, le=50, description="Tries before a dead letter.")
    webhook_backoff_s: float = Field(2, gt=0, description="Wait after the first failed try.")
    webhook_backoff_max_s: float = Field(3600, gt=0, description="Longest wait between tries.")
    webhook_timeout_s: float = Field(10, gt=0, le=120, description="One delivery attempt.")
    webhook_workers: int = Field(4, ge=1, le=64, description="Deliveries in flight at once.")
    webhook_allow_private: bool = Field(
        False,
        description="Allow webhook URLs on loopback/private/link-local addresses (dev and "
        "tests only: in production this is how webhooks reach internal services - SSRF).",
    )
    log_level: str = "info"

    @field_validator("broker")
    @classmethod
    def _broker_url(cls, value: str) -> str:
        if value == "embedded":
            return value
        parts = urlsplit(value)
        if parts.scheme not in ("mqtt", "tcp") or not parts.hostname:
            raise ValueError(f"broker must be 'embedded' or mqtt://host:port, got {value!r}")
        return value

    @field_validator("db")
    @classmethod
    def _db_url(cls, value: str) -> str:
        if value and not value.startswith(("sqlite:", "postgresql:", "postgresql+psycopg:")):
            raise ValueError(f"db must be sqlite:///path or postgresql://…, got {value!r}")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> "Settings":
        if self.broker != "embedded" and not self.broker_admin_password:
            raise ValueError(
                "a Mosquitto broker needs broker_admin_password (AUTOCLOUD_BROKER_ADMIN_PASSWORD): "
                "the dynamic-security admin that Autocloud uses to provision vehicle credentials"
            )
        return self

    @property
    def broker_kind(self) -> BrokerKind:
        return "embedded" if self.broker == "embedded" else "mosquitto"

    @property
    def db_url(self) -> str:
        """The SQLAlchemy URL of the state and history database."""
        if not self.db:
            return f"sqlite:///{self.data_dir / 'autocloud.db'}"
        if self.db.startswith("postgresql://"):
            return "postgresql+psycopg://" + self.db.removeprefix("postgresql://")
        return self.db

    @property
    def mqtt_host_port(self) -> tuple[str, int]:
        if self.broker == "embedded":
            return "127.0.0.1", self.embedded_broker_port
        parts = urlsplit(self.broker)
        return parts.hostname or "127.0.0.1", parts.port or 1883

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        toml = _CONFIG_FILE.get()
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        if toml is not None:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=toml))
        return tuple(sources)


def load_settings(config: Path | None = None, **overrides: Any) -> Settings:
    """Build settings from flags, environment and TOML, or raise ConfigurationError."""
    if config is None and (named := os.environ.get("AUTOCLOUD_CONFIG")):
        config = Path(named)
    if config is not None and not config.is_file():
        raise ConfigurationError(f"config file {config} does not exist")
    given = {k: v for k, v in overrides.items() if v is not None}
    token = _CONFIG_FILE.set(config)
    try:
        return Settings(**given)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'settings'}: {e['msg']}" for e in exc.errors()
        )
        raise ConfigurationError(f"invalid settings: {problems}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigurationError(f"config file {config} is not valid TOML: {exc}") from None
    finally:
        _CONFIG_FILE.reset(token)
