"""Signed webhooks per tenant: alert, DTC, command and diagnostic events POSTed to HTTPS.

Flow: the service listens to the platform's live changes (hub kinds alert, dtc, command,
diag). The hub hands them over on the publisher's thread; an intake thread writes one
delivery row per matching subscription (the durable outbox) before anything is sent, so
a restart resumes what was pending. A dispatcher thread claims due rows (a conditional
update: several processes may share the outbox) and a small pool attempts them: JSON
body, signed with HMAC-SHA256 over ``t + "." + body`` (`domain/webhook_signing.py`). A 2xx
answer delivers; anything else is logged as an attempt and retried with exponential
backoff and jitter; after the last attempt the delivery is `dead` until an operator
re-delivers it. See docs/webhooks.md.
"""

import json
import logging
import queue
import random
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Final
from urllib.parse import SplitResult

from autocloud.domain import webhook_signing as signing
from autocloud.domain.access import Principal, Role
from autocloud.domain.clock import Clock
from autocloud.domain.errors import InvalidInput, NotFound
from autocloud.domain.records import Page
from autocloud.ports.webhooks import (
    Attempt,
    Delivery,
    NewDelivery,
    Webhook,
    WebhookSender,
    WebhookStore,
)
from autocloud.services.fanout import Change, Hub, Listener
from autocloud.services.registry import parse_cursor

log = logging.getLogger(__name__)

KINDS: Final = ("alert", "dtc", "command", "diag")
STATUSES: Final = ("pending", "delivered", "dead")
LEASE_MARGIN_MS: Final = 30_000  # a claimed attempt is retried this long after its timeout
POLL_S: Final = 1.0
MAX_WEBHOOKS_PER_BRAND: Final = 20
MAX_ROW: Final = 2**31 - 1  # ids are SQL INTEGER: a larger one cannot exist (nor be queried)
# The intake's copy of a brand's webhooks is read again after this long: a webhook added or
# removed through another platform process sharing the database applies within it (one
# added or removed through this process applies at once).
SUBSCRIBED_TTL_S: Final = 5.0


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    max_attempts: int
    backoff_s: float
    backoff_max_s: float
    timeout_s: float
    workers: int
    allow_private: bool


class WebhookService:
    """Subscriptions (API), the outbox (intake) and deliveries (dispatcher and pool)."""

    def __init__(
        self,
        store: WebhookStore,
        sender: WebhookSender,
        clock: Clock,
        policy: RetryPolicy,
        *,
        rng: random.Random | None = None,
    ) -> None:
        self._store = store
        self._sender = sender
        self._clock = clock
        self._policy = policy
        self._rng = rng or random.Random()
        self._inbox: queue.SimpleQueue[list[Change] | None] = queue.SimpleQueue()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._slots = threading.BoundedSemaphore(policy.workers)
        self._pool: ThreadPoolExecutor | None = None
        self._threads: list[threading.Thread] = []
        self._listener: Listener | None = None
        self._hub: Hub | None = None
        # brand -> (monotonic time read, its webhooks): the intake runs for every change of
        # every command, alert and DTC, and most brands have no webhook at all.
        self._subscribed: dict[str, tuple[float, list[Webhook]]] = {}
        self._generation = 0  # bumped by every change made here: a read from before is dropped
        self._subscribed_guard = threading.Lock()

    # --- subscriptions ------------------------------------------------------------------------
    def add(
        self, who: Principal, url: str, kinds: list[str], brand: str | None = None
    ) -> tuple[Webhook, str]:
        """Subscribe `url` to event `kinds` of a brand; the secret is returned this once."""
        who.require(Role.ADMIN)
        scope = who.scope(brand)
        if scope is None:
            raise InvalidInput("name the brand whose events this webhook receives")
        unknown = sorted(set(kinds) - set(KINDS))
        if unknown or not kinds:
            raise InvalidInput(f"event kinds must be some of {', '.join(KINDS)}; got {kinds}")
        self.check_reachable(signing.check_url(url))
        if len(self._store.webhooks(scope)) >= MAX_WEBHOOKS_PER_BRAND:
            raise InvalidInput(f"a brand has at most {MAX_WEBHOOKS_PER_BRAND} webhooks")
        secret = signing.new_secret()
        ordered = [k for k in KINDS if k in kinds]
        made = self._store.add_webhook(
            scope, url.strip(), ordered, secret, who.name, self._clock.now_ms()
        )
        self._forget_subscribed()
        return made, secret

    def check_reachable(self, parts: SplitResult) -> None:
        """Refuse hosts that resolve to private addresses unless the settings allow them."""
        if self._policy.allow_private:
            return
        host = parts.hostname or ""
        try:
            addresses = self._sender.addresses(host)
        except OSError as exc:
            raise InvalidInput(f"webhook host {host!r} does not resolve: {exc}") from None
        private = [a for a in addresses if signing.is_private(a)]
        if private or not addresses:
            raise InvalidInput(
                f"webhook host {host!r} resolves to a non-public address ({', '.join(private)}); "
                "set webhook_allow_private only for development"
            )

    def webhooks(self, who: Principal, brand: str | None = None) -> list[Webhook]:
        who.require(Role.OPERATOR)
        return self._store.webhooks(who.scope(brand))

    def webhook(self, who: Principal, webhook_id: int) -> Webhook:
        who.require(Role.OPERATOR)
        found = self._store.webhook(webhook_id) if 0 < webhook_id <= MAX_ROW else None
        if found is None or not who.sees(found.brand):
            raise NotFound(f"webhook {webhook_id} not found")
        return found

    def remove(self, who: Principal, webhook_id: int) -> None:
        who.require(Role.ADMIN)
        self.webhook(who, webhook_id)
        self._store.delete_webhook(webhook_id)
        self._forget_subscribed()

    def _forget_subscribed(self) -> None:
        with self._subscribed_guard:
            self._generation += 1
            self._subscribed.clear()

    def subscribed(self, brand: str) -> list[Webhook]:
        """The brand's webhooks, as the intake matches changes against them (cached)."""
        now = time.monotonic()
        with self._subscribed_guard:
            known = self._subscribed.get(brand)
            generation = self._generation
        if known is not None and now - known[0] < SUBSCRIBED_TTL_S:
            return known[1]
        hooks = self._store.webhooks(brand)
        with self._subscribed_guard:
            if generation == self._generation:
                self._subscribed[brand] = (now, hooks)
        return hooks

    # --- the delivery log -----------------------------------------------------------------------
    def deliveries(
        self,
        who: Principal,
        *,
        webhook_id: int | None = None,
        status: str | None = None,
        brand: str | None = None,
        cursor: str | None = None,
        limit: int = 100,
    ) -> Page:
        who.require(Role.OPERATOR)
        scope = who.scope(brand)
        if webhook_id is not None:
            self.webhook(who, webhook_id)
        if status is not None and status not in STATUSES:
            raise InvalidInput(f"status must be one of {', '.join(STATUSES)}")
        before = min(parse_cursor(cursor), MAX_ROW) or MAX_ROW
        found = self._store.deliveries(
            scope, webhook_id=webhook_id, status=status, before=before, limit=limit
        )
        more = len(found) == limit
        return Page(tuple(found), str(found[-1].id) if more and found else None)

    def delivery(self, who: Principal, delivery_id: int) -> tuple[Delivery, list[Attempt]]:
        who.require(Role.OPERATOR)
        found = self._store.delivery(delivery_id) if 0 < delivery_id <= MAX_ROW else None
        if found is None or not who.sees(found.brand):
            raise NotFound(f"delivery {delivery_id} not found")
        return found, self._store.attempts(delivery_id)

    def redeliver(self, who: Principal, delivery_id: int) -> Delivery:
        """Send a dead delivery again (a new round of attempts, same event id and body)."""
        self.delivery(who, delivery_id)
        if not self._store.redeliver(delivery_id, self._clock.now_ms()):
            raise InvalidInput(f"delivery {delivery_id} is not dead; only dead ones are re-sent")
        self._wake.set()
        found, _ = self.delivery(who, delivery_id)
        return found

    # --- intake: live changes -> outbox -----------------------------------------------------------
    def on_changes(self, changes: list[Change]) -> None:
        """Hub listener (publisher's thread): hand over, never block."""
        self._inbox.put(changes)

    def intake(self, changes: list[Change]) -> int:
        """Write one delivery per (change, matching subscription); how many were written."""
        now = self._clock.now_ms()
        subscribed: dict[str, list[Webhook]] = {}
        rows: list[NewDelivery] = []
        for change in changes:
            if change.brand not in subscribed:
                subscribed[change.brand] = self.subscribed(change.brand)
            if not any(change.kind in hook.kinds for hook in subscribed[change.brand]):
                continue
            event_id = "evt_" + uuid.uuid4().hex
            body = json.dumps(
                {
                    "id": event_id,
                    "type": change.kind,
                    "created_ms": now,
                    "brand": change.brand,
                    "vin": change.vin,
                    "data": change.data,
                },
                separators=(",", ":"),
                default=str,
            )
            for hook in subscribed[change.brand]:
                if change.kind in hook.kinds:
                    rows.append(
                        NewDelivery(
                            hook.id, hook.brand, event_id, change.kind, change.vin, body, now
                        )
                    )
        self._store.enqueue(rows)
        if rows:
            self._wake.set()
        return len(rows)

    # --- dispatch ------------------------------------------------------------------------------
    def dispatch(self, *, wait: bool = False) -> int:
        """Claim the due deliveries and attempt them on the pool; how many were started.

        With `wait` (tests), attempts run on this thread, one after another.
        """
        now = self._clock.now_ms()
        lease = now + int(self._policy.timeout_s * 1000) + LEASE_MARGIN_MS
        started = 0
        for delivery in self._store.due(now, self._policy.workers * 4):
            if not self._store.claim(delivery.id, delivery.next_attempt_ms, lease):
                continue
            started += 1
            if wait or self._pool is None:
                self.attempt(delivery)
            else:
                self._slots.acquire()
                self._pool.submit(self._attempt_in_slot, delivery)
        return started

    def _attempt_in_slot(self, delivery: Delivery) -> None:
        try:
            self.attempt(delivery)
        except Exception:
            log.exception("webhook delivery %s: attempt failed to record", delivery.id)
        finally:
            self._slots.release()
            self._wake.set()

    def attempt(self, delivery: Delivery) -> Attempt:
        """One signed POST of a claimed delivery, recorded with the next status."""
        hook = self._store.webhook(delivery.webhook_id)
        number = delivery.attempts + 1
        now = self._clock.now_ms()
        if hook is None:  # deleted meanwhile (its deliveries go with it)
            return Attempt(number, now, None, "webhook deleted", 0)
        body = delivery.body.encode()
        headers = {
            "Content-Type": "application/json",
            signing.HEADER: signing.header(hook.secret, now // 1000, body),
            "Autocloud-Event": delivery.kind,
            "Autocloud-Event-Id": delivery.event_id,
            "Autocloud-Delivery": str(delivery.id),
        }
        outcome_code: int | None
        error: str | None
        try:
            self.check_reachable(signing.check_url(hook.url))  # DNS may have changed
        except InvalidInput as exc:
            outcome_code, error, took = None, f"refused: {exc}", 0
        else:
            outcome = self._sender.post(hook.url, body, headers)
            outcome_code, error, took = outcome.status_code, outcome.error, outcome.duration_ms
        result = Attempt(number, now, outcome_code, error, took)
        ok = outcome_code is not None and 200 <= outcome_code < 300
        p = self._policy
        if ok:
            status, next_ms = "delivered", now
        elif number >= p.max_attempts:
            status, next_ms = "dead", now
        else:
            wait_s = signing.backoff_s(number, p.backoff_s, p.backoff_max_s, self._rng.random)
            status, next_ms = "pending", now + int(wait_s * 1000)
        self._store.record(delivery.id, result, status, next_ms)
        return result

    # --- lifecycle -----------------------------------------------------------------------------
    def start(self, hub: Hub) -> None:
        """Listen to the hub and run the intake and dispatch threads."""
        self._hub = hub
        self._listener = hub.listen(
            lambda c: c.kind in KINDS and bool(c.brand), self.on_changes, KINDS
        )
        self._pool = ThreadPoolExecutor(self._policy.workers, thread_name_prefix="webhook")
        loops = (("webhook-intake", self._intake_loop), ("webhook-dispatch", self._dispatch_loop))
        for name, target in loops:
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self) -> None:
        if self._hub is not None and self._listener is not None:
            self._hub.unlisten(self._listener)
        self._stop.set()
        self._inbox.put(None)
        self._wake.set()
        for thread in self._threads:
            thread.join(timeout=5)
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
        self._sender.close()

    def _intake_loop(self) -> None:
        while not self._stop.is_set():
            changes = self._inbox.get()
            if changes is None:
                return
            while True:  # a store outage keeps the changes here until it is back
                try:
                    self.intake(changes)
                    break
                except Exception:
                    log.exception("webhooks: cannot store deliveries; retrying")
                    if self._stop.wait(POLL_S):
                        return

    def _dispatch_loop(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(POLL_S)
            self._wake.clear()
            try:
                self.dispatch()
            except Exception:
                log.exception("webhooks: dispatch failed; retrying")
