"""A short-lived cache of API tokens by digest, for the SQL registry.

Every API request authenticates its bearer token; reading `api_tokens` for each one was a
database round trip per request (6-7 % of the platform's interpreter time in the command
benchmark's profile, plus the PostgreSQL round trip). A token found is reused for
`TOKEN_TTL_S`. A revocation through this process (`SqlRegistry.revoke_token`, which the API's
`DELETE /v1/tokens/{id}` calls) drops the token at once; one made by another process that
shares the database is seen within `TOKEN_TTL_S`. Unknown digests are not cached: a token
made after a failed try works at once, and guesses cannot fill the cache.
"""

import threading
import time
from collections.abc import Callable

from autocloud.domain.records import TokenInfo

TOKEN_TTL_S = 5.0
MAX_TOKENS = 10_000  # bound: past it, what has expired is dropped, then the older half


class TokenCache:
    """Digest -> (expiry on the monotonic clock, token), thread-safe.

    A reader takes `stamp()` before it reads the database and hands it to `put`: a token
    read before a revocation committed is not cached after the revocation dropped it.
    """

    def __init__(
        self, ttl_s: float = TOKEN_TTL_S, now: Callable[[], float] = time.monotonic
    ) -> None:
        self._ttl_s = ttl_s
        self._now = now
        self._lock = threading.Lock()
        self._by_digest: dict[str, tuple[float, TokenInfo]] = {}
        self._drops = 0  # how many revocations this cache has seen

    def stamp(self) -> int:
        return self._drops

    def get(self, digest: str) -> TokenInfo | None:
        """The cached token, or None when it is not cached or has expired."""
        found = self._by_digest.get(digest)  # a dict read is atomic; no lock on the hot path
        if found is None or found[0] <= self._now():
            return None
        return found[1]

    def put(self, digest: str, token: TokenInfo, stamp: int) -> None:
        """Cache `token`, read from the database after `stamp()` returned `stamp`."""
        now = self._now()
        with self._lock:
            if stamp != self._drops:
                return  # a token was revoked while this one was read: it may be that one
            if len(self._by_digest) >= MAX_TOKENS:
                live = {k: v for k, v in self._by_digest.items() if v[0] > now}
                if len(live) >= MAX_TOKENS:  # all live: keep the newer half (insertion order)
                    live = dict(list(live.items())[MAX_TOKENS // 2 :])
                self._by_digest = live
            self._by_digest[digest] = (now + self._ttl_s, token)

    def drop(self, token_id: int) -> None:
        """Forget token `token_id` (it was revoked): the next request reads the database."""
        with self._lock:
            self._drops += 1
            self._by_digest = {k: v for k, v in self._by_digest.items() if v[1].id != token_id}
