"""Fixtures of the API tests: a wired platform (never started: no broker), its FastAPI app,
a group admin token, and two brands, "alpha" and "beta", each with one vehicle, one owner
and a token per role.

Telemetry goes in through `platform.ingest.handle([...])`: the real ingest pipeline and
commit, without MQTT. The platform clock is fixed at `NOW`, so times are deterministic.
"""

import json
import os
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from autocloud.bootstrap import SYSTEM, Platform, build
from autocloud.domain.access import Role
from autocloud.domain.clock import FixedClock
from autocloud.domain.vin import check_digit
from autocloud.entrypoints.api.app import create_app
from autocloud.ports.link import Inbound
from autocloud.services.ingest.stages import Batch
from autocloud.settings import load_settings

with warnings.catch_warnings():
    # Starlette's notice (a UserWarning) that httpx will be replaced by httpx2 in its
    # TestClient; the client works as documented, the notice is noise in every run.
    warnings.filterwarnings("ignore", message=".*httpx.*", category=UserWarning)
    from fastapi.testclient import TestClient

NOW = 1_767_225_600_000  # 2026-01-01T00:00:00Z: the platform's (fixed) clock
ROLES = ("viewer", "operator", "admin")

SPEED = "Vehicle.Speed"
SOC = "Vehicle.Powertrain.TractionBattery.StateOfCharge.Current"
LOCKED = "Vehicle.Cabin.Door.Row1.DriverSide.IsLocked"


def na_vin(serial: int, prefix: str = "1HGCM826") -> str:
    """A North American VIN (check digit mandatory) with a correct check digit."""
    draft = f"{prefix}03A{serial:06d}"
    return draft[:8] + check_digit(draft) + draft[9:]


def eu_vin(serial: int) -> str:
    """A European VIN (no check digit needed), Volkswagen WMI."""
    return f"WVWZZZ1JZXW{serial:06d}"


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def telemetry(
    vin: str, seq: int, ts: int, signals: dict[str, Any], *, sid: str = "s1", **extra: Any
) -> Inbound:
    """A protocol v1 telemetry message as the broker would deliver it."""
    body = {"v": 1, "sid": sid, "seq": seq, "ts": ts, "signals": signals, **extra}
    return raw(vin, json.dumps(body).encode())


def state(vin: str, online: bool, ts: int) -> Inbound:
    body = {"v": 1, "online": online, "ts": ts, "sid": "s1"}
    return raw(vin, json.dumps(body).encode(), "state")


def raw(vin: str, payload: bytes, subtopic: str = "telemetry") -> Inbound:
    return Inbound(f"vehicles/{vin}/{subtopic}", payload, received_ms=NOW)


@dataclass
class Tenant:
    """One brand and what it owns."""

    id: str
    name: str
    vin: str
    model: str
    secret: str  # the vehicle's broker credential, as provisioning returned it
    owner_id: int
    owner_name: str
    owner_email: str
    tokens: dict[str, str] = field(default_factory=dict)  # role -> bearer token
    token_ids: dict[str, int] = field(default_factory=dict)  # role -> token id
    command_id: str = ""  # a command sent to its vehicle (set by the tenancy walk's seed)
    gateway_id: int = 0  # a fleet gateway granted its vehicle (set by the tenancy walk's seed)
    rule_id: int = 0  # an alert rule of its brand (set by the tenancy walk's seed)
    alert_id: int = 0  # an alert that rule opened on its vehicle (set by the seed)

    def h(self, role: str = "admin") -> dict[str, str]:
        return auth(self.tokens[role])

    def secrets(self) -> list[str]:
        """Strings that must never appear in a response to another tenant."""
        return [self.vin, self.name, self.model, self.owner_name, self.owner_email, self.secret]


@dataclass
class Env:
    platform: Platform
    client: TestClient
    group_token: str
    alpha: Tenant
    beta: Tenant
    seq: int = 0

    @property
    def g(self) -> dict[str, str]:
        """Headers of the group admin."""
        return auth(self.group_token)

    def ingest(self, *messages: Inbound) -> Batch:
        """Run messages through the real ingest pipeline and commit them."""
        return self.platform.ingest.handle(list(messages))

    def send(self, vin: str, ts: int, signals: dict[str, Any], **extra: Any) -> Batch:
        """One telemetry message with the next sequence number."""
        self.seq += 1
        return self.ingest(telemetry(vin, self.seq, ts, signals, **extra))


def _tenant(platform: Platform, brand: str, name: str, vin: str, model: str, owner: str) -> Tenant:
    registry = platform.registry
    registry.add_brand(SYSTEM, brand, name)
    provisioned = registry.add_vehicle(SYSTEM, vin, brand, model)
    email = f"{owner.lower()}@{brand}.example"
    found = registry.add_owner(SYSTEM, brand, owner, email)
    registry.attach_owner(SYSTEM, vin, found.id)
    tenant = Tenant(
        brand, name, provisioned.vehicle.vin, model, provisioned.secret, found.id, owner, email
    )
    for role in ROLES:
        info, token = registry.issue_token(f"{brand}-{role}", Role.parse(role), brand)
        tenant.tokens[role] = token
        tenant.token_ids[role] = info.id
    return tenant


def build_env(data_dir: Path, db: str | None = None) -> Env:
    """A platform on SQLite in `data_dir` (or on `db`), with brands alpha and beta."""
    platform = build(load_settings(data_dir=data_dir, db=db), clock=FixedClock(NOW))
    group_token = platform.ensure_admin_token()
    assert group_token is not None
    alpha = _tenant(platform, "alpha", "Alpha Motors", na_vin(1), "Arrow", "Alice")
    beta = _tenant(platform, "beta", "Beta Automobiles", eu_vin(2), "Bison", "Bertram")
    client = TestClient(create_app(platform))
    return Env(platform, client, group_token, alpha, beta)


@pytest.fixture
def clean_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    """Settings come from the test alone, not from the developer's AUTOCLOUD_* variables."""
    for name in list(os.environ):
        if name.startswith("AUTOCLOUD_"):
            monkeypatch.delenv(name)


@pytest.fixture
def env(tmp_path: Path, clean_environ: None) -> Iterator[Env]:
    """A fresh embedded (SQLite) platform with brands alpha and beta."""
    built = build_env(tmp_path)
    yield built
    built.client.close()
    built.platform.stop()
