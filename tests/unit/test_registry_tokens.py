"""The SQL registry's token cache: entries expire, a revocation drops them at once, and a
token read before a revocation is not cached after it (adapters/sql/registry_tokens.py)."""

import pytest

from autocloud.adapters.sql import registry_tokens
from autocloud.adapters.sql.registry_tokens import TokenCache
from autocloud.domain.records import TokenInfo

OPS = TokenInfo(1, "ops", "operator", "vw", 0, None)
VIEW = TokenInfo(2, "view", "viewer", "vw", 0, None)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_cached_token_expires_after_its_ttl() -> None:
    clock = Clock()
    cache = TokenCache(ttl_s=5, now=clock)
    assert cache.get("a") is None
    cache.put("a", OPS, cache.stamp())
    assert cache.get("a") == OPS
    clock.now += 4.9
    assert cache.get("a") == OPS
    clock.now += 0.1
    assert cache.get("a") is None


def test_revocation_drops_only_that_token() -> None:
    cache = TokenCache(now=Clock())
    cache.put("a", OPS, cache.stamp())
    cache.put("b", VIEW, cache.stamp())
    cache.drop(OPS.id)
    assert cache.get("a") is None
    assert cache.get("b") == VIEW


def test_a_token_read_before_a_revocation_is_not_cached_after_it() -> None:
    cache = TokenCache(now=Clock())
    stamp = cache.stamp()  # a request starts reading the token...
    cache.drop(OPS.id)  # ...meanwhile the token is revoked and dropped
    cache.put("a", OPS, stamp)  # the stale read (not revoked) must not be kept
    assert cache.get("a") is None
    cache.put("a", OPS, cache.stamp())  # a read after the revocation is
    assert cache.get("a") == OPS


def test_the_cache_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(registry_tokens, "MAX_TOKENS", 4)
    clock = Clock()
    cache = TokenCache(ttl_s=5, now=clock)
    cache.put("old", OPS, cache.stamp())
    clock.now += 10  # "old" has expired
    for digest in "abc":
        cache.put(digest, VIEW, cache.stamp())
    cache.put("d", VIEW, cache.stamp())  # full: the expired one goes
    assert [cache.get(d) for d in ("a", "b", "c", "d")] == [VIEW] * 4
    cache.put("e", VIEW, cache.stamp())  # full of live ones: the older half goes
    assert cache.get("a") is None and cache.get("b") is None
    assert cache.get("e") == VIEW
