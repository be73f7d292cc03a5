"""The stream's `kinds` parameter and the snapshot's gzip negotiation read their input as
written: bad input is a clear 422, not a stream that silently sends nothing."""

import pytest

from tests.api.conftest import Env


@pytest.mark.timeout(20)  # a stream wrongly opened would never end
@pytest.mark.parametrize("kinds", ["", " , ", "positons", "twin,presense", "positions,TWIN"])
def test_unknown_or_empty_kinds_are_refused_in_words(env: Env, kinds: str) -> None:
    r = env.client.get("/v1/stream", params={"kinds": kinds}, headers=env.g)
    assert r.status_code == 422, r.text
    assert r.headers["content-type"] == "application/problem+json"
    assert "kinds" in r.text and "positions" in r.text  # names the kinds it knows


@pytest.mark.timeout(20)
def test_interval_that_is_not_a_number_is_refused(env: Env) -> None:
    for interval in ("nan", "inf", "-1"):
        r = env.client.get(
            "/v1/stream", params={"kinds": "positions", "interval": interval}, headers=env.g
        )
        assert r.status_code == 422, (interval, r.text)


def test_snapshot_is_not_gzipped_for_a_client_that_refuses_gzip(env: Env) -> None:
    from autocloud.bootstrap import SYSTEM
    from tests.api.conftest import na_vin

    for serial in range(10, 60):  # big enough to be compressed when gzip is accepted
        env.platform.registry.add_vehicle(SYSTEM, na_vin(serial), "alpha")
    url = "/v1/fleet/positions"
    refused = env.client.get(url, headers={**env.g, "Accept-Encoding": "gzip;q=0, identity"})
    assert refused.status_code == 200
    assert "content-encoding" not in refused.headers
    assert refused.json()["n"] == 52
