"""In-process fan-out of live changes to stream subscribers (SSE).

Ingest publishes from its own thread; each subscriber is an asyncio queue on the API's
event loop. A slow subscriber loses its oldest events and is told so (`lagged`), rather
than slowing ingest down.

Services that are not on an event loop (webhooks) `listen` instead: their callback runs on
the publisher's thread and must only hand the changes on (e.g. to a queue).
"""

import asyncio
import logging
import threading
from collections.abc import Callable, Collection
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
    kinds: frozenset[str] | None = None  # the kinds `accepts` can take (None: any)
    lagged: int = 0

    def offer(self, change: Change) -> None:
        if self.queue.full():
            self.queue.get_nowait()
            self.lagged += 1
        self.queue.put_nowait(change)


@dataclass(eq=False)
class Listener:
    """A thread-safe subscriber: `deliver` is called on the publisher's thread."""

    accepts: Callable[[Change], bool]
    deliver: Callable[[list[Change]], None]
    kinds: frozenset[str] | None = None  # the kinds `accepts` can take (None: any)


@dataclass
class Hub:
    """Publish from any thread; subscribe from an event loop, or listen from any thread."""

    queue_size: int = 10_000
    _subs: set[Subscription] = field(default_factory=set)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _listeners: set[Listener] = field(default_factory=set)

    def listen(
        self,
        accepts: Callable[[Change], bool],
        deliver: Callable[[list[Change]], None],
        kinds: Collection[str] | None = None,
    ) -> Listener:
        """`kinds`: the only kinds `accepts` can take, if known (see `wants`)."""
        listener = Listener(accepts, deliver, None if kinds is None else frozenset(kinds))
        with self._lock:
            self._listeners.add(listener)
        return listener

    def unlisten(self, listener: Listener) -> None:
        with self._lock:
            self._listeners.discard(listener)

    def subscribe(
        self, accepts: Callable[[Change], bool], kinds: Collection[str] | None = None
    ) -> Subscription:
        """`kinds`: the only kinds `accepts` can take, if known (see `wants`)."""
        sub = Subscription(
            asyncio.get_running_loop(),
            asyncio.Queue(self.queue_size),
            accepts,
            None if kinds is None else frozenset(kinds),
        )
        with self._lock:
            self._subs.add(sub)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        with self._lock:
            self._subs.discard(sub)

    def publish(self, changes: list[Change]) -> None:
        with self._lock:
            subs = list(self._subs)
            listeners = list(self._listeners)
        for listener in listeners:
            picked = [c for c in changes if listener.accepts(c)]
            if picked:
                try:
                    listener.deliver(picked)
                except Exception:  # a listener's defect must not break publishing
                    logging.getLogger(__name__).exception("hub listener %r failed", listener)
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

    def wants(self, kind: str) -> bool:
        """Whether a subscriber or listener may take changes of `kind` now, so a publisher
        can skip building changes nobody takes (ingest's twin changes: one per message). A
        subscriber that arrives later gets the next batch's changes, as if it came then."""
        with self._lock:
            takers: list[Subscription | Listener] = [*self._subs, *self._listeners]
        return any(t.kinds is None or kind in t.kinds for t in takers)


def _deliver(sub: Subscription, changes: list[Change]) -> None:
    for change in changes:
        sub.offer(change)
