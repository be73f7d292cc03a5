"""The `GatewayStore` contract (adapters/sql/gateways.py) on SQLite and PostgreSQL."""

import pytest

from autocloud.adapters.sql.store import SqlStore
from autocloud.domain.errors import Conflict, NotFound
from autocloud.domain.gateway import Gateway
from tests.contract.helpers import T0, add_vehicle


def test_add_and_read_a_gateway(brands: SqlStore) -> None:
    made = brands.gateways.add_gateway("vw", "depot-1", "a" * 64, T0)
    assert made == Gateway(made.id, "vw", "depot-1", T0, 0)
    assert made.username == "gw.vw.depot-1"
    assert brands.gateways.gateway(made.id) == made
    assert brands.gateways.gateway_by_name("vw", "depot-1") == made
    assert brands.gateways.gateway_by_name("seat", "depot-1") is None
    assert brands.gateways.secret_digest("vw", "depot-1") == "a" * 64
    assert brands.gateways.secret_digest("vw", "nope") is None


def test_names_are_unique_per_brand_only(brands: SqlStore) -> None:
    brands.gateways.add_gateway("vw", "hub", "a" * 64, T0)
    with pytest.raises(Conflict):
        brands.gateways.add_gateway("vw", "hub", "b" * 64, T0)
    other = brands.gateways.add_gateway("seat", "hub", "c" * 64, T0)
    assert other.brand == "seat"
    with pytest.raises(NotFound):
        brands.gateways.add_gateway("nosuch", "hub", "d" * 64, T0)


def test_list_is_scoped_to_a_brand(brands: SqlStore) -> None:
    a = brands.gateways.add_gateway("vw", "a", "a" * 64, T0)
    b = brands.gateways.add_gateway("seat", "b", "b" * 64, T0)
    assert brands.gateways.gateways(None) == [a, b]
    assert brands.gateways.gateways("seat") == [b]


def test_grant_count_revoke_and_idempotence(brands: SqlStore) -> None:
    cars = [add_vehicle(brands, i) for i in range(1, 1201)]  # more than one chunk of rows
    gw = brands.gateways.add_gateway("vw", "hub", "a" * 64, T0)
    found = brands.gateways.vehicles_of([c.vin for c in cars] + ["WVWZZZ1JZXW999999"])
    assert len(found) == 1200 and found[cars[0].vin] == (cars[0].id, "vw")
    assert brands.gateways.grant(gw.id, [c.id for c in cars[:700]]) == 700
    assert brands.gateways.grant(gw.id, [c.id for c in cars]) == 500  # 700 held already
    assert brands.gateways.granted(gw.id) == frozenset(c.vin for c in cars)
    gateway = brands.gateways.gateway(gw.id)
    assert gateway is not None and gateway.vins == 1200
    assert brands.gateways.revoke(gw.id, [c.vin for c in cars[:600]] + ["WVWZZZ1JZXW999999"]) == 600
    assert brands.gateways.granted(gw.id) == frozenset(c.vin for c in cars[600:])
    with pytest.raises(NotFound):
        brands.gateways.grant(999_999, [cars[0].id])


def test_deleting_a_vehicle_or_the_gateway_drops_the_grants(brands: SqlStore) -> None:
    one, two = add_vehicle(brands, 1), add_vehicle(brands, 2)
    gw = brands.gateways.add_gateway("vw", "hub", "a" * 64, T0)
    brands.gateways.grant(gw.id, [one.id, two.id])
    brands.registry.delete_vehicle(one.vin)
    assert brands.gateways.granted(gw.id) == frozenset({two.vin})
    brands.gateways.delete_gateway(gw.id)
    assert brands.gateways.gateway(gw.id) is None
    assert brands.gateways.granted(gw.id) == frozenset()
    with pytest.raises(NotFound):
        brands.gateways.delete_gateway(gw.id)
    brands.registry.delete_vehicle(two.vin)  # no grant row holds it back
