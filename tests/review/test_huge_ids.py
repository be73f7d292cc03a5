"""Review: an id in a path or query that no SQL integer can hold is a clear 404/422, never
a 500 (SQLite overflows at 2**63, PostgreSQL INTEGER at 2**31), on both databases."""

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.api.conftest import Env, build_env

HUGE = (2**31, 2**63, 10**30)


@pytest.fixture
def both(db_url: str, tmp_path: Path, clean_environ: None) -> Iterator[Env]:
    built = build_env(tmp_path, db_url)
    yield built
    built.client.close()
    built.platform.stop()


@pytest.mark.parametrize(
    "path",
    [
        "/v1/alert-rules/{n}",
        "/v1/alerts/{n}",
        "/v1/alerts?rule_id={n}",
        "/v1/gateways/{n}",
        "/v1/webhooks/{n}",
        "/v1/webhook-deliveries/{n}",
    ],
)
def test_huge_ids_are_not_found(both: Env, path: str) -> None:
    for n in HUGE:
        response = both.client.get(path.format(n=n), headers=both.g)
        assert response.status_code in (200, 404, 422), (path, n, response.text)
        if "?" in path and response.status_code == 200:
            assert response.json()["items"] == []
