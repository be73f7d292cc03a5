"""Settings: flags over environment over TOML over defaults, with clear errors."""

from pathlib import Path

import pytest

from autocloud.domain.errors import ConfigurationError
from autocloud.settings import load_settings


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("AUTOCLOUD_CONFIG", "AUTOCLOUD_API_PORT", "AUTOCLOUD_DB", "AUTOCLOUD_BROKER"):
        monkeypatch.delenv(name, raising=False)


def test_embedded_defaults() -> None:
    s = load_settings()
    assert s.broker_kind == "embedded"
    assert s.db_url == "sqlite:///var/autocloud.db"
    assert s.mqtt_host_port == ("127.0.0.1", 1884)


def test_precedence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    toml = tmp_path / "autocloud.toml"
    toml.write_text('api_port = 9001\nhistory_retention_days = 7\ndb = "postgresql://u@h/d"\n')
    monkeypatch.setenv("AUTOCLOUD_API_PORT", "9002")
    s = load_settings(toml)
    assert s.api_port == 9002  # env beats TOML
    assert s.history_retention_days == 7  # TOML beats default
    assert s.db_url == "postgresql+psycopg://u@h/d"
    assert load_settings(toml, api_port=9003).api_port == 9003  # flags beat env


def test_mosquitto_needs_the_dynsec_admin() -> None:
    with pytest.raises(ConfigurationError, match="broker_admin_password"):
        load_settings(broker="mqtt://127.0.0.1:1883")
    s = load_settings(broker="mqtt://10.0.0.5:8883", broker_admin_password="x")
    assert s.broker_kind == "mosquitto" and s.mqtt_host_port == ("10.0.0.5", 8883)


@pytest.mark.parametrize(
    ("flags", "words"),
    [
        ({"broker": "http://x"}, "broker must be 'embedded' or mqtt://host:port"),
        ({"db": "mysql://x"}, "db must be sqlite"),
        ({"api_port": 70000}, "api_port"),
        ({"consumer_id": "a b"}, "consumer_id"),
    ],
)
def test_invalid_values_name_the_setting(flags: dict[str, object], words: str) -> None:
    with pytest.raises(ConfigurationError, match=words):
        load_settings(**flags)


def test_missing_config_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="does not exist"):
        load_settings(tmp_path / "nope.toml")


def test_unknown_toml_key_is_refused(tmp_path: Path) -> None:
    toml = tmp_path / "a.toml"
    toml.write_text("api_prot = 1\n")
    with pytest.raises(ConfigurationError, match="api_prot"):
        load_settings(toml)


def test_broken_toml_is_a_configuration_error(tmp_path: Path) -> None:
    toml = tmp_path / "a.toml"
    toml.write_text("api_port = = 1\n")
    with pytest.raises(ConfigurationError, match="not valid TOML"):
        load_settings(toml)
