"""An owner's open stream stops carrying a detached vehicle within the documented refresh.

docs/commands.md: the live stream "re-reads the owner's VINs every 5 s, so a detached vehicle
leaves an open stream". The stream used to re-read them only at the top of its loop, before
waiting up to 15 s for the next change: a change that arrived after a quiet spell was checked
against a list read long before (the sold car's next position reached its former owner).
Here the refresh interval is 0: every change must be checked against a list read after it.
"""

import threading

import pytest

from autocloud.bootstrap import SYSTEM
from autocloud.entrypoints.api import routes_stream
from tests.api.conftest import NOW, SPEED, Env, eu_vin
from tests.api.test_owner_scope import Owner
from tests.api.test_tenancy import _sse_data


@pytest.mark.timeout(30)
def test_a_detached_vehicle_leaves_an_idle_owner_stream(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    olga = Owner(env)
    other = env.platform.registry.add_vehicle(SYSTEM, eu_vin(4), "beta", "Calf").vehicle.vin
    env.platform.registry.attach_owner(SYSTEM, other, olga.id)
    monkeypatch.setattr(routes_stream, "OWNED_REFRESH_S", 0.0)
    registry = env.platform.registry
    real = registry.owned_vins
    read_once = threading.Event()

    def owned_vins(owner_id: int) -> frozenset[str]:
        found = real(owner_id)
        read_once.set()
        return found

    monkeypatch.setattr(registry, "owned_vins", owned_vins)
    with env.client.stream("GET", "/v1/stream", params={"kinds": "twin"}, headers=olga.h) as r:
        assert r.status_code == 200
        lines = r.iter_lines()
        assert _sse_data(lines, 1) == [("ready", {})]
        # The stream has read Olga's VINs (both cars) and now waits for the next change.
        assert read_once.wait(10)
        detached = env.client.delete(f"/v1/vehicles/{olga.vin}/owners/{olga.id}", headers=env.g)
        assert detached.status_code == 200, detached.text
        env.send(olga.vin, NOW - 2_000, {SPEED: 44.0})  # the sold car moves on
        env.send(other, NOW - 1_000, {SPEED: 5.0})  # her remaining car
        got = _sse_data(lines, 1)
    assert [(kind, data["vin"]) for kind, data in got] == [("twin", other)]
