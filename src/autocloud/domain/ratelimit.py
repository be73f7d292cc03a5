"""Token buckets: at most `rate` actions per minute per key, in bursts of up to `burst`.

Pure: the caller passes the time, so tests need no clock. Memory is bounded: when the
table grows past `max_keys`, buckets that have refilled completely (idle keys) are dropped.
"""

from dataclasses import dataclass, field


@dataclass(slots=True)
class _Bucket:
    tokens: float
    at_ms: int


@dataclass
class TokenBuckets:
    rate_per_min: float
    burst: float
    max_keys: int = 100_000
    _buckets: dict[object, _Bucket] = field(default_factory=dict)

    def _level(self, key: object, now_ms: int) -> _Bucket:
        bucket = self._buckets.get(key)
        if bucket is None:
            if len(self._buckets) >= self.max_keys:
                self._prune(now_ms)
            bucket = self._buckets[key] = _Bucket(self.burst, now_ms)
        elapsed = max(0, now_ms - bucket.at_ms)
        bucket.tokens = min(self.burst, bucket.tokens + elapsed * self.rate_per_min / 60_000)
        bucket.at_ms = now_ms
        return bucket

    def wait_s(self, key: object, now_ms: int) -> float:
        """0 when `key` has a token now; else the seconds until it has one."""
        bucket = self._level(key, now_ms)
        if bucket.tokens >= 1:
            return 0.0
        return (1 - bucket.tokens) * 60 / self.rate_per_min

    def take(self, key: object, now_ms: int) -> None:
        """Spend one token of `key` (call after `wait_s` said 0)."""
        self._level(key, now_ms).tokens -= 1

    def _prune(self, now_ms: int) -> None:
        full = [k for k in self._buckets if self._level(k, now_ms).tokens >= self.burst]
        for key in full:
            del self._buckets[key]
