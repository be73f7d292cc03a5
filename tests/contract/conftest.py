"""Fixtures of the storage contract suite; `store` (SQLite and PostgreSQL) is in tests/conftest."""

import pytest

from autocloud.adapters.sql.store import SqlStore
from tests.contract.helpers import T0


@pytest.fixture
def brands(store: SqlStore) -> SqlStore:
    """The store with two brands (tenants): `vw` and `seat`."""
    store.registry.add_brand("vw", "Volkswagen", T0)
    store.registry.add_brand("seat", "SEAT", T0 + 1)
    return store
