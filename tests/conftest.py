"""Fixtures shared by every test: services that must run in CI, stores on each database."""

import os
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from autocloud.adapters.sql.store import SqlStore

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = (REPO / ".." / "shared" / "data").resolve()
VSS_PATH = SHARED_DATA / "vss" / "vss_release_6.0.json"
IN_CI = os.environ.get("CI") == "true"
pytest_plugins = ["tests.support.mosquitto"]  # the mosquitto_broker fixture

PG_ADMIN_URL = os.environ.get(
    "AUTOCLOUD_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)


def need(condition: bool, what: str) -> None:
    """Skip outside CI when a service or file is missing; fail in CI, where it must exist."""
    if condition:
        return
    if IN_CI:
        pytest.fail(f"{what} is required in CI")
    pytest.skip(what)


def port_open(host: str, port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex((host, port)) == 0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture(scope="session")
def vss_path() -> Path:
    need(VSS_PATH.exists(), f"VSS release JSON missing at {VSS_PATH} (../shared/data)")
    return VSS_PATH


@pytest.fixture(scope="session")
def pg_template() -> Iterator[str]:
    """A migrated template database; each test gets a fast copy of it."""
    need(port_open("127.0.0.1", 5432), "PostgreSQL on 127.0.0.1:5432 (start it with pg_ctlcluster)")
    from sqlalchemy import create_engine, text

    from autocloud.adapters import postgres

    name = f"ac_tmpl_{uuid.uuid4().hex[:8]}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    postgres.open_store(url).close()
    yield name
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture
def pg_url(pg_template: str) -> Iterator[str]:
    """URL of a fresh, migrated PostgreSQL database, dropped after the test."""
    from sqlalchemy import create_engine, text

    name = f"ac_test_{uuid.uuid4().hex[:10]}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}" TEMPLATE "{pg_template}" STRATEGY FILE_COPY'))
    yield PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'autocloud.db'}"


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest) -> str:
    """Run the test once per database adapter."""
    fixture = "sqlite_url" if request.param == "sqlite" else "pg_url"
    url: str = request.getfixturevalue(fixture)
    return url


@pytest.fixture
def store(db_url: str) -> Iterator[SqlStore]:
    from autocloud.bootstrap import open_store

    opened = open_store(db_url)
    yield opened
    opened.close()
