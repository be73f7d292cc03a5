"""Getting commands to vehicles and their changes to everyone watching.

What: `Delivery` signs a queued command (the next counter of (vehicle, platform key); an
owner's app signed its own commands already), marks it sent and publishes it on
`vehicles/{vin}/commands`; resends a command still `sent` when its vehicle comes back (the
vehicle answers a resend with its stored result, so nothing runs twice); expires commands
past their expiry; and tells the live stream (`Change("command", ...)`) and any waiting API
call of every change.

Why a thread of its own: vehicle results and presence arrive on the ingest thread, which must
not wait on the database or the broker; `after_commit` only queues work here.

Order: a counter is taken, committed and handed to the broker under the vehicle's send lock
(in this process one of `STRIPES` locks chosen by vehicle id; across processes the store's
database lock, `CommandStore.add`/`mark_sent`), so counters reach a vehicle in increasing
order. The same lock orders the vehicle's key lists (`publish_keys`): the signed list of
the keys it trusts, published retained on `vehicles/{VIN}/keys` after every key change.
"""

import logging
import queue
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Protocol

from autocloud.domain.clock import Clock
from autocloud.domain.command_keyset import encode_key_list, sign_key_list
from autocloud.domain.command_records import AuditEntry, Command, VehicleKey
from autocloud.domain.command_signing import SignedCommand, Signer, encode
from autocloud.domain.commands import TERMINAL, State
from autocloud.domain.errors import AutocloudError
from autocloud.domain.protocol import CloudTopic, CommandResult
from autocloud.domain.protocol import State as Presence
from autocloud.domain.records import Value
from autocloud.ports.commands import CommandStore, Sending
from autocloud.services.fanout import Change, Hub
from autocloud.services.ingest.stages import Batch

log = logging.getLogger(__name__)
SWEEP_S = 1.0
# A long poll re-reads its command at least this often: a result another platform process
# ingested (consumers sharing the broker subscription) wakes nobody in this one.
RECHECK_S = 1.0
STRIPES = 64  # in-process send locks, shared by vehicles whose ids fall on the same one


class Send(Protocol):
    """Publish to `vehicles/{vin}/{subtopic}` at QoS 1 (`Platform.send`)."""

    def __call__(
        self, vin: str, subtopic: str, payload: bytes, *, retain: bool = False
    ) -> None: ...


def command_view(c: Command) -> dict[str, Any]:
    """A command as the API, the stream and webhooks show it."""
    return {
        "id": c.id,
        "vin": c.vin,
        "brand": c.brand,
        "name": c.name,
        "params": c.params,
        "state": c.state.value,
        "reason": c.reason,
        "result": c.result,
        "caller": c.caller,
        "issued_ms": c.issued_ms,
        "expires_ms": c.expires_ms,
        "counter": c.counter,
        "kid": c.kid,
        "timings": {
            "queued_ms": c.queued_ms,
            "sent_ms": c.sent_ms,
            "delivered_ms": c.delivered_ms,
            "finished_ms": c.finished_ms,
        },
    }


def signed_of(c: Command) -> SignedCommand:
    """The command exactly as it was signed (for a resend)."""
    assert c.counter is not None and c.kid is not None and c.sig is not None
    return SignedCommand(
        v=1,
        id=c.id,
        vin=c.vin,
        name=c.name,
        params=c.params,
        issued=c.issued_ms,
        expires=c.expires_ms,
        counter=c.counter,
        kid=c.kid,
        sig=c.sig,
    )


class Delivery:
    def __init__(
        self, store: CommandStore, signer: Signer, send: Send, hub: Hub, clock: Clock
    ) -> None:
        self._store = store
        self._signer = signer
        self._send = send
        self._hub = hub
        self._clock = clock
        self._stripes = tuple(threading.Lock() for _ in range(STRIPES))
        self._keys_due: set[int] = set()  # vehicles whose last key list was not published
        self._keys_guard = threading.Lock()
        # Long polls waiting for a command, by its id: a change wakes only its own waiters
        # (each re-reads the store), not every open long poll.
        self._waiters: dict[str, set[threading.Event]] = {}
        self._waiters_guard = threading.Lock()
        self._work: queue.SimpleQueue[tuple[str, Any] | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None

    # --- lifecycle -------------------------------------------------------------------------
    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="commands", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._thread is not None:
            self._work.put(None)
            self._thread.join(timeout=10)
            self._thread = None

    def after_commit(self, batch: Batch) -> None:
        """Ingest listener: queue sends for vehicles that came online and news of results."""
        results: list[str] = []
        for item in batch.items:
            message = item.message
            if not item.alive or item.vehicle is None or item.vin is None:
                continue
            if isinstance(message, CommandResult):
                results.append(message.id)
            elif isinstance(message, Presence) and message.online:
                self._work.put(("online", (item.vehicle.id, item.vin)))
        if results:
            # Wake their long polls now (they re-read the store); the stream's news of the
            # change needs a read of the commands, so it is left to the delivery thread.
            self._wake(results)
            self._work.put(("results", results))

    def _loop(self) -> None:
        next_sweep = time.monotonic()
        while True:
            try:
                job = self._work.get(timeout=max(0.0, next_sweep - time.monotonic()))
            except queue.Empty:
                job = ("sweep", None)
            if job is None:
                return
            try:
                self._do(*job)
            except AutocloudError as exc:  # a database outage: the next sweep retries
                log.warning("command delivery failed (%s): %s", job[0], exc)
            except Exception:
                log.exception("command delivery failed on %s", job[0])
            if time.monotonic() >= next_sweep:
                next_sweep = time.monotonic() + SWEEP_S
                if job[0] != "sweep":
                    self._do("sweep", None)

    def _do(self, kind: str, arg: Any) -> None:
        if kind == "online":
            for command in self._store.waiting(arg[0]):
                self.send(command)
        elif kind == "results":
            self.changed(self._store.by_ids(arg))
        else:
            self.expire_due()
            self._retry_keys()

    # --- sending ---------------------------------------------------------------------------
    def _lock(self, vehicle_id: int) -> threading.Lock:
        return self._stripes[hash(vehicle_id) % STRIPES]

    def send(self, command: Command) -> Command:
        """Sign and publish a queued command, or resend a sent one; return it as it is now."""
        with self._lock(command.vehicle_id):
            now = self._clock.now_ms()
            current = self._store.get(command.id) or command
            if current.state in TERMINAL or current.state is State.DELIVERED:
                return current
            if now >= current.expires_ms:
                return self._expire(current, now) or current
            if current.state is State.QUEUED:
                sending = self._sending(current, now)
                moved = self._store.mark_sent(current.id, sending, self._announce)
                return moved or self._store.get(command.id) or current
            self._publish(current)  # a resend: same counter and signature
            return current

    def _announce(self, command: Command) -> None:
        """Tell the stream a command was sent, then publish it (the store calls this under
        the vehicle's send lock, once the counter is committed)."""
        self.changed([command])
        self._publish(command)

    def send_new(
        self, command: Command, audit: AuditEntry, desired: Mapping[str, Value] | None = None
    ) -> Command:
        """Store a new command for an online vehicle (with its desired state), signed and
        marked sent in the same transaction (one commit before the publish); publish it."""
        with self._lock(command.vehicle_id):
            now = self._clock.now_ms()

            def announce(stored: Command) -> None:
                self.changed([command, stored])  # queued, then sent: one hub publish
                self._publish(stored)

            stored = self._store.add(command, audit, self._sending(command, now), desired, announce)
            if stored.state is not State.SENT:  # not marked sent: nothing was published
                self.changed([stored])
            return stored

    def _publish(self, command: Command) -> None:
        try:
            self._send(command.vin, CloudTopic.COMMANDS.value, encode(signed_of(command)))
        except AutocloudError as exc:  # no broker link: it is resent when the car returns
            log.warning("could not publish command %s to %s: %s", command.id, command.vin, exc)

    def _sending(self, command: Command, now: int) -> Sending:
        """Sign with the next counter and mark sent; an app-signed command (it has its
        signature already) is marked sent with the app's signature and counter unchanged."""
        if command.sig is not None:
            detail = f"signed by app key {command.kid}, counter {command.counter}"
            return Sending(now, _audit(command, now, "platform", State.SENT.value, detail))

        def sign(counter: int) -> str:
            return self._signer.sign(
                id=command.id,
                vin=command.vin,
                name=command.name,
                params=command.params,
                issued=command.issued_ms,
                expires=command.expires_ms,
                counter=counter,
            ).sig

        detail = f"signed by {self._signer.kid}"
        audit = _audit(command, now, "platform", State.SENT.value, detail)
        return Sending(now, audit, self._signer.kid, sign)

    # --- key lists -------------------------------------------------------------------------
    def publish_keys(self, vehicle_id: int) -> int | None:
        """Sign and publish (retained) the keys the vehicle is to trust now, with the next
        serial; the serial, or None when it was not published (it is tried again at each
        sweep) or the vehicle is gone."""
        sent = [False]

        def publish(vin: str, serial: int, keys: list[VehicleKey]) -> None:
            sent[0] = self._send_keys(vin, serial, keys)

        try:
            with self._lock(vehicle_id):
                serial = self._store.key_list(vehicle_id, publish)
        except AutocloudError as exc:  # a database outage: the sweep tries again
            log.warning("could not build the key list of vehicle %s: %s", vehicle_id, exc)
            serial = 0
        with self._keys_guard:
            if serial is None or sent[0]:
                self._keys_due.discard(vehicle_id)
            else:
                self._keys_due.add(vehicle_id)
        return serial if sent[0] else None

    def _send_keys(self, vin: str, serial: int, keys: list[VehicleKey]) -> bool:
        platform = VehicleKey(
            self._signer.kid, self._signer.public, "platform", 0, "platform", platform=True
        )
        listed = sign_key_list(
            self._signer,
            vin=vin,
            serial=serial,
            issued=self._clock.now_ms(),
            keys=[k.entry() for k in (platform, *keys)],
        )
        try:
            self._send(vin, CloudTopic.KEYS.value, encode_key_list(listed), retain=True)
        except AutocloudError as exc:
            log.warning("could not publish the key list of %s: %s", vin, exc)
            return False
        return True

    def clear_keys(self, vin: str) -> None:
        """Take back the retained key list of a deleted vehicle (a VIN registered again must
        not inherit the keys of its former life)."""
        try:
            self._send(vin, CloudTopic.KEYS.value, b"", retain=True)
        except AutocloudError as exc:
            log.warning("could not clear the key list of %s: %s", vin, exc)

    def _retry_keys(self) -> None:
        with self._keys_guard:
            due = sorted(self._keys_due)
        for vehicle_id in due:
            self.publish_keys(vehicle_id)

    # --- expiry ----------------------------------------------------------------------------
    def expire_due(self) -> int:
        """Expire every open command past its expiry; return how many."""
        now = self._clock.now_ms()
        done = 0
        while due := self._store.due(now, 500):
            expired = [c for c in (self._expire(c, now) for c in due) if c is not None]
            done += len(expired)
            if len(due) < 500 or not expired:
                break
        return done

    def _expire(self, command: Command, now: int) -> Command | None:
        why = {
            State.QUEUED: "never delivered: the vehicle was not online before the expiry",
            State.SENT: "no answer from the vehicle before the expiry",
            State.DELIVERED: "the vehicle accepted it but sent no result before the expiry",
        }.get(command.state, "expired")
        audit = _audit(command, now, "platform", State.EXPIRED.value, why)
        moved = self._store.move(command.id, State.EXPIRED, now, audit, reason=why)
        if moved is not None:
            self.changed([moved])
        return moved

    # --- telling the world -----------------------------------------------------------------
    def changed(self, commands: Iterable[Command]) -> None:
        listed = list(commands)
        changes = [Change("command", c.vin, c.brand, command_view(c)) for c in listed]
        if changes:
            self._hub.publish(changes)
            self._wake(c.id for c in listed)

    def _wake(self, command_ids: Iterable[str]) -> None:
        with self._waiters_guard:
            for command_id in command_ids:
                for event in self._waiters.get(command_id, ()):
                    event.set()

    def wait(self, command_id: str, until: Callable[[], bool], timeout_s: float) -> bool:
        """Block until `until()` holds or `timeout_s` passes; `until` is checked at once and
        after each change of command `command_id` that this process makes (it reads the
        store: wake it only once the change is committed), and every `RECHECK_S`.

        The waiter is registered before the first check and its event cleared before each
        one, so a change between a check and the wait is not missed.
        """
        event = threading.Event()
        with self._waiters_guard:
            self._waiters.setdefault(command_id, set()).add(event)
        try:
            deadline = time.monotonic() + timeout_s
            while True:
                event.clear()
                if until():
                    return True
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                event.wait(min(remaining, RECHECK_S))
        finally:
            with self._waiters_guard:
                waiting = self._waiters.get(command_id)
                if waiting is not None:
                    waiting.discard(event)
                    if not waiting:
                        del self._waiters[command_id]


def _audit(c: Command, now: int, caller: str, action: str, detail: str) -> AuditEntry:
    return AuditEntry(now, caller, action, detail, c.brand, c.vin, c.id, c.name)
