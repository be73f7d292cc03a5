"""In-process fan-out of live changes to stream subscribers (SSE).

Ingest publishes from its own thread; each subscriber is an asyncio queue on the API's
event loop. A slow subscriber loses its oldest events and is told so (`lagged`), rather
than slowing ingest down.
"""

import asyncio
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class Change:
    """A live change: `kind` is twin, presence, event or dead_letter."""

    kind: str
    vin: str
    brand: str
    data: dict[str, Any]


@dataclass(eq=False)
class Subscription:
    loop: asyncio.AbstractEventLoop
    queue: asyncio.Queue[Change | None]
    accepts: Callable[[Change], bool]
    lagged: int = 0

    def offer(self, change: Change) -> None:
        if self.queue.full():
            self.queue.get_nowait()
            self.lagged += 1
        self.queue.put_nowait(change)


@dataclass
class Hub:
    """Publish from any thread; subscribe from an event loop."""

    queue_size: int = 10_000
    _subs: set[Subscription] = field(default_factory=set)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def subscribe(self, accepts: Callable[[Change], bool]) -> Subscription:
        sub = Subscription(asyncio.get_running_loop(), asyncio.Queue(self.queue_size), accepts)
        with self._lock:
            self._subs.add(sub)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        with self._lock:
            self._subs.discard(sub)

    def publish(self, changes: list[Change]) -> None:
        with self._lock:
            subs = list(self._subs)
        for sub in subs:
            mine = [c for c in changes if sub.accepts(c)]
            if mine:
                try:
                    sub.loop.call_soon_threadsafe(_deliver, sub, mine)
                except RuntimeError:  # the subscriber's loop is closed
                    self.unsubscribe(sub)

    @property
    def subscribers(self) -> int:
        return len(self._subs)


def _deliver(sub: Subscription, changes: list[Change]) -> None:
    for change in changes:
        sub.offer(change)
