"""Runs the ingest stages on batches of vehicle messages and acknowledges them when durable.

Messages arrive from the `VehicleLink` thread into a queue. One worker thread takes up to
`batch` messages (waiting at most `wait_ms` to fill it), runs the stages, commits the
batch in one transaction, and only once it is durable acknowledges every message of it to
the broker (QoS 1 PUBACK). If the commit fails, nothing is acknowledged and the batch is
retried; if the process dies, the broker redelivers, and (vin, sid, seq) dedupe plus
idempotent history writes make the redelivery harmless.

On a store that `defers_sync` (SQLite) the worker's commits make no fsync of their own: it
commits, publishes the batch to live subscribers and goes on with the next batch, while a
second thread syncs the store, once for every batch committed since its last sync, then
acknowledges them, then lets the store do its housekeeping (group sync). Readers see a
batch before it is durable; a power cut may take back what was not synced yet, and the
broker delivers those messages again.
"""

import contextlib
import gc
import logging
import queue
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from autocloud.domain.catalog import Catalog
from autocloud.domain.clock import Clock
from autocloud.domain.errors import StoreUnavailable
from autocloud.domain.protocol import Event, Reason, State, Telemetry
from autocloud.domain.records import DeadLetter, Value, WriteBatch
from autocloud.ports.link import Inbound, VehicleLink
from autocloud.ports.stores import TelemetryWriter
from autocloud.services.fanout import Change, Hub
from autocloud.services.ingest.stages import (
    Authorise,
    Batch,
    Dedupe,
    Envelope,
    Item,
    Record,
    Stage,
    Validate,
    decode_stage,
)
from autocloud.services.metrics import Metrics

log = logging.getLogger(__name__)
INTERNAL_ERROR = Reason.INTERNAL_ERROR.value
BATCH_BYTES = 2 * 1024 * 1024  # store-and-forward messages are big: bound a transaction's work


class Pipeline:
    """The ordered stages; `run` turns inbound messages into one WriteBatch."""

    def __init__(
        self,
        store: TelemetryWriter,
        catalog: Catalog,
        metrics: Metrics,
        *,
        max_payload_bytes: int,
        max_future_skew_ms: int,
        after_record: Sequence[tuple[str, Stage]] = (),
    ) -> None:
        """`after_record`: features' stages (alert rules…) that run on what `record` kept."""
        self.authorise = Authorise(store)
        self.dedupe = Dedupe(store)
        self.stages: list[tuple[str, Stage]] = [
            ("envelope", Envelope(max_payload_bytes)),
            ("decode", decode_stage),
            ("authorise", self.authorise),
            # Dedupe before validation: a redelivered message is one `duplicate`, not its
            # per-signal dead letters all over again.
            ("dedupe", self.dedupe),
            ("validate", Validate(catalog, max_future_skew_ms)),
            ("record", Record(store)),
            *after_record,
        ]
        self._metrics = metrics
        self._timers = {name: metrics.stage_seconds.labels(name) for name, _ in self.stages}

    def run(self, messages: Sequence[Inbound], now_ms: int) -> Batch:
        batch = Batch([Item(m) for m in messages], now_ms, WriteBatch(received_ms=now_ms))
        for name, stage in self.stages:
            started = time.perf_counter()
            stage(batch)
            self._timers[name].observe(time.perf_counter() - started)
        self.authorise.attribute(batch)
        return batch


class IngestService:
    """Owns the worker thread between the vehicle link and the store."""

    def __init__(
        self,
        store: TelemetryWriter,
        pipeline: Pipeline,
        hub: Hub,
        metrics: Metrics,
        clock: Clock,
        *,
        batch: int = 2000,
        wait_ms: int = 2,
        retry_s: float = 0.5,
        deferred_sync: bool = True,
    ) -> None:
        """`deferred_sync`: on a store that `defers_sync`, sync and acknowledge on a thread
        of their own instead of waiting for the disk in every commit."""
        self._store = store
        self.pipeline = pipeline
        self._hub = hub
        self._metrics = metrics
        self._clock = clock
        self._batch = batch
        self._wait_s = wait_ms / 1000
        self._retry_s = retry_s
        self._inbox: queue.SimpleQueue[Inbound] = queue.SimpleQueue()
        self._links: list[VehicleLink] = []
        self._running = threading.Event()
        self._drain_until: float | None = None
        self._thread: threading.Thread | None = None
        self._defer = False  # set at start when the store and the setting both allow it
        self._want_defer = deferred_sync
        self._unsynced: queue.SimpleQueue[list[Inbound] | None] = queue.SimpleQueue()
        self._syncer: threading.Thread | None = None
        self.durability_lost: str | None = None  # why ingest stopped for good, if it did
        self.processed = 0
        # Called with every committed batch, on the ingest thread (after its acks, unless they
        # wait for a group sync): features that react to vehicle replies (commands,
        # diagnostics) hook in here. Keep them quick.
        self.after_commit: list[Callable[[Batch], None]] = []

    # --- lifecycle -----------------------------------------------------------------------
    def start(self, *links: VehicleLink) -> None:
        """Start the worker, then attach `links` (more can be attached later)."""
        self._running.set()
        self._defer = self._want_defer and self._store.defers_sync
        if self._defer:
            self._syncer = threading.Thread(target=self._sync_loop, name="ingest-sync", daemon=True)
            self._syncer.start()
        self._thread = threading.Thread(target=self._loop, name="ingest", daemon=True)
        self._thread.start()
        for link in links:
            self.attach(link)

    def attach(self, link: VehicleLink) -> None:
        """Receive from `link`; its messages are acknowledged through it after commit."""
        index = len(self._links)
        self._links.append(link)

        def sink(message: Inbound) -> None:
            message.token = (index, message.token)
            self._inbox.put(message)

        link.start(sink)

    def stop(self, drain_s: float = 10.0) -> None:
        """Commit and acknowledge what has arrived (for at most `drain_s`), then disconnect.

        Draining first spares the broker redelivering a whole batch after every clean stop;
        whatever is left unacknowledged stays with the broker (or the vehicle) for later.
        """
        self._drain_until = time.monotonic() + drain_s
        if self._thread is not None:
            self._thread.join(timeout=drain_s + 30)
        if self._syncer is not None:  # what was committed is synced and acknowledged
            self._unsynced.put(None)
            self._syncer.join(timeout=drain_s + 30)
        self._running.clear()
        for link in reversed(self._links):
            link.stop()

    def submit(self, message: Inbound) -> None:
        """Queue a message that no link will acknowledge (tests, replay)."""
        message.token = (None, message.token)
        self._inbox.put(message)

    def _ack(self, messages: Sequence[Inbound]) -> None:
        """Acknowledge each message through the link it came from, one call per link."""
        by_link: dict[int, list[Inbound]] = {}
        for message in messages:
            index, token = message.token if isinstance(message.token, tuple) else (None, None)
            if index is not None:
                message.token = token  # the link's own token again; the message is done
                by_link.setdefault(index, []).append(message)
        for index, acked in by_link.items():
            self._links[index].ack(acked)

    # --- work ----------------------------------------------------------------------------
    def _loop(self) -> None:
        while self._running.is_set():
            messages = self._take()
            if messages:
                self._until_committed(messages)
            elif self._drain_until is not None:
                return  # stopping, and nothing is waiting
            if self._drain_until is not None and time.monotonic() > self._drain_until:
                return

    def _sync_loop(self) -> None:
        """Group sync: one sync of the store for every batch committed since the last one,
        then their acknowledgements, then the store's housekeeping (off the acks' path).
        Ends at the `None` that `stop` queues behind the rest, or when durability is lost
        (any failure here stops ingest: nothing committed would be acknowledged any more)."""
        timer = self._metrics.stage_seconds.labels("sync")
        last = False
        try:
            while not last:
                messages, last = self._next_round()
                if not messages:
                    continue
                started = time.perf_counter()
                if not self._sync():
                    return
                timer.observe(time.perf_counter() - started)
                self._ack(messages)
                self._store.after_sync()
        except Exception as exc:  # DurabilityLost from the housekeeping, or a defect
            self._lose_durability(exc)

    def _next_round(self) -> tuple[list[Inbound], bool]:
        """Every message committed since the last round (waiting for the first), and whether
        `stop`'s `None` came behind them."""
        waiting = self._unsynced.get()
        if waiting is None:
            return [], True
        messages = waiting
        while True:
            try:
                more = self._unsynced.get_nowait()
            except queue.Empty:
                return messages, False
            if more is None:
                return messages, True
            messages.extend(more)

    def _sync(self) -> bool:
        """Sync the store, retrying while it is unavailable (until a stop's drain time is
        over); False when it is not synced, and then ingest has stopped."""
        while True:
            try:
                self._store.sync()
                return True
            except StoreUnavailable as exc:
                if self._drain_until is not None and time.monotonic() > self._drain_until:
                    log.warning("stopping with commits not synced, not acknowledged: %s", exc)
                    return False
                self._metrics.commit_failures.inc()
                log.warning("ingest sync failed, retrying in %.1f s: %s", self._retry_s, exc)
                time.sleep(self._retry_s)
            except Exception as exc:  # DurabilityLost, or a defect in the sync itself
                self._lose_durability(exc)
                return False

    def _lose_durability(self, exc: Exception) -> None:
        """Stop ingest for good: what it committed since the last good sync may be gone from
        the disk, so nothing waiting on a sync is acknowledged."""
        self.durability_lost = str(exc) or type(exc).__name__
        self._running.clear()
        log.critical("ingest stopped: %s", self.durability_lost, exc_info=exc)

    def _take(self) -> list[Inbound]:
        """The next batch: the first message, and what arrives within `wait_ms` of it.

        It sleeps through the wait and then takes what has gathered, rather than waking for
        each message: at a few thousand messages a second, waking per message handed the
        interpreter back and forth between the link's thread and this one for every arrival.
        """
        try:
            first = self._inbox.get(timeout=0.2)
        except queue.Empty:
            return []
        if self._wait_s > 0 and self._inbox.qsize() < self._batch:
            time.sleep(self._wait_s)
        messages = [first]
        size = len(first.payload)
        take = self._inbox.get_nowait
        while len(messages) < self._batch and size < BATCH_BYTES:
            try:
                message = take()
            except queue.Empty:
                break
            messages.append(message)
            size += len(message.payload)
        return messages

    def _until_committed(self, messages: list[Inbound]) -> None:
        """Commit `messages`, retrying while the store is down, isolating any poison message.

        A failure other than an unavailable store is a defect that some message triggers; the
        batch is retried one message at a time, and the one that still fails is dead-lettered
        as `internal_error`, so one bad message can neither stop ingest nor be lost.
        """
        while self._running.is_set():
            try:
                self.process(messages)
                return
            except StoreUnavailable as exc:
                self._metrics.commit_failures.inc()
                log.warning("ingest commit failed, retrying in %.1f s: %s", self._retry_s, exc)
                time.sleep(self._retry_s)
            except Exception as exc:
                # A vehicle removed and registered again elsewhere leaves a stale id in the
                # cache, which the store refuses: look every vehicle up afresh for the retry.
                self.pipeline.authorise.clear()
                if len(messages) > 1:
                    for message in messages:
                        self._until_committed([message])
                else:
                    self._quarantine(messages[0], exc)
                return

    def _quarantine(self, message: Inbound, exc: Exception) -> None:
        log.exception("ingest failed on a message of %s; dead-lettering it", message.topic)
        dead = DeadLetter(
            received_ms=message.received_ms,
            topic=message.topic,
            reason=INTERNAL_ERROR,
            detail=f"the platform failed on this message ({type(exc).__name__}: {exc})"[:2000],
            payload=message.payload,
            vin=message.topic.split("/")[1] if message.topic.count("/") >= 2 else None,
        )
        done = False
        while self._running.is_set():
            try:
                self._store.commit(WriteBatch(received_ms=message.received_ms, dead_letters=[dead]))
                done = True
                break
            except StoreUnavailable:
                time.sleep(self._retry_s)
            except Exception:
                log.exception("could not store the dead letter; raw payload: %r", message.payload)
                done = True
                break
        if not done:  # stopping: the broker keeps the message
            return
        self._metrics.dead_letters.labels(INTERNAL_ERROR).inc()
        if self._defer:  # after the batches committed before it
            self._unsynced.put([message])
        else:
            self._ack([message])

    @property
    def started(self) -> bool:
        return self._thread is not None

    @property
    def alive(self) -> bool:
        """Whether the worker thread runs, and its sync thread if it has one (False before
        start and after a crash, a loss of durability or a stop)."""
        worker = self._thread is not None and self._thread.is_alive()
        return worker and (self._syncer is None or self._syncer.is_alive())

    def handle(self, messages: Sequence[Inbound]) -> Batch:
        """Process, commit, acknowledge and fan out one batch, and return it (for tests)."""
        with cycle_gc_paused():
            return self._handle(messages)

    def process(self, messages: Sequence[Inbound]) -> None:
        """`handle` without keeping the batch: it is freed before the cycle collector runs
        again, so the young collection that follows has only the batch's survivors to look at
        (with the batch still alive, each such collection walked its ~100,000 containers: ~6 ms
        a batch, 4-5 % of ingest's CPU in `bench/pipeline.py`)."""
        with cycle_gc_paused():
            self._handle(messages)

    def _handle(self, messages: Sequence[Inbound]) -> Batch:
        batch = self.pipeline.run(messages, self._clock.now_ms())
        started = time.perf_counter()
        self._store.commit(batch.out, durable=not self._defer)
        self.pipeline.dedupe.committed(batch.out)
        self._metrics.stage_seconds.labels("commit").observe(time.perf_counter() - started)
        if self._defer:
            self._unsynced.put(list(messages))
        else:
            self._ack(messages)
        self._account(batch)
        self._hub.publish(changes(batch, twin=self._hub.wants("twin")))
        for listener in self.after_commit:
            try:
                listener(batch)
            except Exception:  # a listener's defect must not undo a committed, acked batch
                log.exception("after-commit listener %r failed", listener)
        self.processed += len(messages)
        return batch

    def _account(self, batch: Batch) -> None:
        m = self._metrics
        m.batch_size.observe(len(batch.items))
        kinds = Counter(item.kind for item in batch.items)
        for kind, count in kinds.items():
            m.messages_in.labels(kind.value if kind else "invalid").inc(count)
        m.signals_in.inc(sum([len(frame.values) for frame in batch.out.history]))
        for reason, count in Counter(dead.reason for dead in batch.out.dead_letters).items():
            m.dead_letters.labels(reason).inc(count)
        now = self._clock.now_ms()
        observe = m.ingest_lag.observe
        for item in batch.items:
            observe(max(0, now - item.inbound.received_ms) / 1000)


@contextlib.contextmanager
def cycle_gc_paused() -> Iterator[None]:
    """No automatic cycle collection while a batch is processed.

    A batch builds tens of thousands of short-lived containers (points, rows, changes); left
    on, the cycle collector walks them again and again as they are made, which cost about 15 %
    of ingest's CPU in `bench/pipeline.py`. Reference counting still frees them as usual; only
    cycles wait, and the collector runs as soon as the batch is done.
    """
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


class TwinChange(Change):
    """A `twin` change whose `data` ({"signals": {path: {"value", "ts"}}}) is built when first
    read. Subscribers pick changes by kind, VIN and brand; a stream that follows one brand
    reads the data of that brand's changes only, so the others never build their dict per
    signal (13 % of ingest's time at 5,900 messages a second, when built for every message).
    Two threads reading it at once may both build it: the same value, so either one is kept.
    """

    __slots__ = ("_built", "_points", "_several")
    _built: dict[str, Any] | None
    _points: list[tuple[str, int, Value]]
    _several: bool

    def __init__(
        self, vin: str, brand: str, points: list[tuple[str, int, Value]], several: bool
    ) -> None:
        set_field = object.__setattr__  # Change is frozen
        set_field(self, "kind", "twin")
        set_field(self, "vin", vin)
        set_field(self, "brand", brand)
        set_field(self, "_points", points)
        set_field(self, "_several", several)
        set_field(self, "_built", None)

    @property
    def data(self) -> dict[str, Any]:
        built: dict[str, Any] | None = self._built
        if built is None:
            built = {"signals": twin_signals(self._points, several=self._several)}
            object.__setattr__(self, "_built", built)
        return built


def twin_signals(
    points: list[tuple[str, int, Value]], *, several: bool
) -> dict[str, dict[str, object]]:
    """Each path's value and ts; of several instants (`several`) the newest, of equal ts the
    later point."""
    if not several:  # one instant: every path once
        return {p: {"value": v, "ts": ts} for p, ts, v in points}
    latest: dict[str, tuple[object, int]] = {}
    for path, ts, value in points:
        if path not in latest or ts >= latest[path][1]:
            latest[path] = (value, ts)
    return {p: {"value": v, "ts": ts} for p, (v, ts) in latest.items()}


def changes(batch: Batch, *, twin: bool = True) -> list[Change]:
    """What a committed batch tells live subscribers (`twin`: with a twin change per
    telemetry message; off while nobody takes them, since they cost a dict per signal)."""
    out: list[Change] = []
    for item in batch.items:
        if item.vehicle is None or item.vin is None:
            continue
        vin, brand, message = item.vin, item.vehicle.brand, item.message
        if item.alive and isinstance(message, Telemetry) and item.points:
            if twin:
                out.append(TwinChange(vin, brand, item.points, message.samples is not None))
        elif item.alive and isinstance(message, State):
            out.append(Change("presence", vin, brand, {"online": message.online}))
        elif item.alive and isinstance(message, Event):
            out.append(
                Change(
                    "event",
                    vin,
                    brand,
                    {"type": message.type, "ts": message.ts, "data": message.data},
                )
            )
    for dead in batch.out.dead_letters:
        out.append(
            Change(
                "dead_letter",
                dead.vin or "",
                dead.brand or "",
                {"reason": dead.reason, "detail": dead.detail},
            )
        )
    return out
