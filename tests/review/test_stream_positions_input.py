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


@pytest.mark.timeout(30)
def test_one_token_holds_a_bounded_number_of_streams(env: Env) -> None:
    """Each stream holds a queue and a gzip compressor: one token may not open without end."""
    name = env.platform.registry.authenticate(env.group_token).name
    state = env.client.app.state  # type: ignore[attr-defined]
    with env.client.stream("GET", "/v1/stream", headers=env.g) as r:
        assert r.status_code == 200
        next(r.iter_lines())  # the `ready` event: the stream is counted now
        assert state.open_streams == {name: 1}
    limit = env.platform.settings.stream_max_per_token
    state.open_streams[name] = limit  # as if `limit` streams were open
    refused = env.client.get("/v1/stream", headers=env.g)
    assert refused.status_code == 429, refused.text
    assert "stream_max_per_token" in refused.text and refused.json()["retry_after_s"] == 15
    other = env.client.get("/v1/stream", params={"kinds": "nope"}, headers=env.alpha.h())
    assert other.status_code == 422  # another token is not limited by this one's streams
