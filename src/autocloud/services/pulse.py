"""The fleet's pulse for the dashboard: vehicles online and messages per second over time.

The platform keeps no history of presence, and Prometheus counters are group-wide, so the
dashboard's "vehicles online over time" and per-brand "messages/s" come from here: every
`interval_ms` a sampler thread records, per brand, the vehicles registered and online (one
aggregate query) and the vehicle messages committed since the last sample (counted by an
after-commit listener, no query). Samples live in memory for `keep` intervals (24 h at the
default 10 s): the series starts when the platform starts, and says so (`since_ms`).
"""

import threading
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass

from autocloud.domain.clock import Clock
from autocloud.services.ingest.stages import Batch

Counts = Callable[[], dict[str, tuple[int, int]]]  # brand -> (vehicles, online)


@dataclass(frozen=True, slots=True)
class Sample:
    ts: int
    interval_ms: int
    brands: dict[str, tuple[int, int, int]]  # brand -> (vehicles, online, messages)


@dataclass(frozen=True, slots=True)
class PulsePoint:
    ts: int
    vehicles: int
    online: int
    messages_per_s: float


class FleetPulse:
    def __init__(
        self, counts: Counts, clock: Clock, interval_ms: int = 10_000, keep: int = 8640
    ) -> None:
        self._counts = counts
        self._clock = clock
        self.interval_ms = interval_ms
        self._samples: deque[Sample] = deque(maxlen=keep)
        self._messages: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_ms = clock.now_ms()
        self.since_ms = self._last_ms

    def on_commit(self, batch: Batch) -> None:
        """After-commit listener: count the batch's accepted messages per brand."""
        counted: Counter[str] = Counter(
            item.vehicle.brand for item in batch.items if item.alive and item.vehicle is not None
        )
        with self._lock:
            self._messages.update(counted)
        if self._thread is None:
            self.start()

    def start(self) -> None:
        """Sample every interval on a daemon thread (idempotent)."""
        with self._lock:
            if self._thread is not None:
                return
            self._thread = threading.Thread(target=self._run, name="fleet-pulse", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.wait(self.interval_ms / 1000):
            try:
                self.sample()
            except Exception:  # a failed query (store down) skips one sample, no more
                continue

    def sample(self) -> Sample:
        """Take one sample now (the thread calls this; tests may too)."""
        counts = self._counts()
        now = self._clock.now_ms()
        with self._lock:
            messages, self._messages = self._messages, Counter()
            interval, self._last_ms = max(1, now - self._last_ms), now
        brands = {
            brand: (vehicles, online, messages.get(brand, 0))
            for brand, (vehicles, online) in counts.items()
        }
        taken = Sample(now, interval, brands)
        self._samples.append(taken)
        return taken

    def series(self, scope: str | None) -> list[PulsePoint]:
        """The samples summed over the brands in `scope` (None: the whole group)."""
        out = []
        for s in list(self._samples):
            chosen = [v for b, v in s.brands.items() if scope is None or b == scope]
            messages = sum(m for _, _, m in chosen)
            out.append(
                PulsePoint(
                    ts=s.ts,
                    vehicles=sum(v for v, _, _ in chosen),
                    online=sum(o for _, o, _ in chosen),
                    messages_per_s=round(messages * 1000 / s.interval_ms, 2),
                )
            )
        return out
