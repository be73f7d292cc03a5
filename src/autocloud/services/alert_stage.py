"""The alert-rule ingest stage: evaluates every tenant's rules on each batch, cheaply.

Cheap by construction: rules are indexed per brand by signal path (a `*` pattern is matched
once per path, then cached), so a point no rule watches costs one dict lookup; a watched
value that does not meet its test and has no tracker costs one C-level comparison. A
message of one sample without a guard (nearly all) is evaluated in one pass as sent
(`_one_sample`); any other in time order, guards first (`_in_order`). State lives per
vehicle — trackers (pending or firing) and remembered values (`alert_values`) — and trackers
change copy-on-write into a per-batch overlay that is adopted only after the commit
(``committed``), values with an undo, so a batch retried after a failed commit is evaluated
from the same state.

Transitions go to ``WriteBatch.extra`` as one :class:`AlertChanges` record, written in the
ingest transaction; after commit they are published as ``alert`` changes. Pending waits (a
``for_s`` condition holding, not yet long enough) go the same way as one
:class:`PendingChanges` record — only when a wait starts or ends, not per sample — so a
restart resumes a wait where it was (in vehicle time) instead of starting it over. Open
alerts and pending waits are restored from the store at start; other threads (the API) ask
for a rule reload or for a tracker to be forgotten through a queue that the stage drains on
the ingest thread (a forgotten wait is deleted with the next batch).
"""

import logging
import queue
import time
from collections.abc import Callable, Iterable
from typing import Any, Final

from autocloud.domain.alert_eval import OPEN, Compiled, Tracker, dtc_matches, elapsed, step
from autocloud.domain.alerts import (
    AlertChanges,
    AlertOpened,
    AlertResolved,
    EventCondition,
    PendingChanges,
    PendingWait,
)
from autocloud.domain.dtc import severity
from autocloud.domain.dtc_active import DtcUpdate
from autocloud.domain.protocol import Event, Telemetry
from autocloud.ports.diagnostics import AlertStore
from autocloud.services.alert_index import RuleSet, alert_change, detail, order
from autocloud.services.alert_values import KeptValues, Point
from autocloud.services.fanout import Change, Hub
from autocloud.services.ingest.stages import Batch, Item

log = logging.getLogger(__name__)
RELOAD_S: Final = 5.0  # rules changed by another process are picked up this late at most
SEED_LIMIT: Final = 200_000  # vehicles whose guard values are kept
Key = tuple[int, str]  # (rule id, signal path or "" for event rules)
_NONE: Final[frozenset[str]] = frozenset()


class AlertStage:
    """Ingest stage and after-commit listener for alert rules."""

    def __init__(self, store: AlertStore, hub: Hub, clock: Callable[[], float] = time.monotonic):
        self._store = store
        self._hub = hub
        self._clock = clock
        self._inbox: queue.SimpleQueue[tuple[str, int | None, int | None]] = queue.SimpleQueue()
        self._sets: dict[str, RuleSet] = {}
        self._by_id: dict[int, Compiled] = {}
        self._trackers: dict[int, dict[Key, Tracker]] = {}
        self._kept = KeptValues(SEED_LIMIT)  # guard and watched values, undone on a retry
        self._work: dict[int, dict[Key, Tracker]] = {}
        self._batch: Batch | None = None
        self._changes: list[AlertOpened | AlertResolved] = []
        # Pending waits dropped by `forget` (rule changed): deleted with the next batch; the
        # first `_forgotten_sent` of them ride in the batch being committed.
        self._forgotten: list[tuple[int, int, str]] = []
        self._forgotten_sent = 0
        self._next_reload = 0.0

    # --- control (any thread) ------------------------------------------------------------
    def reload(self) -> None:
        """Re-read the rules before the next batch."""
        self._inbox.put(("reload", None, None))

    def forget(self, rule_id: int, vehicle_id: int | None = None) -> None:
        """Drop the trackers of a rule (of one vehicle), e.g. after an acknowledge resolved it."""
        self._inbox.put(("forget", rule_id, vehicle_id))

    def restore(self) -> None:
        """Load the rules, resume every pending wait and mark every open alert's tracker
        firing (at start)."""
        self._load_rules()
        for w in self._store.pending_waits():
            if w.rule_id in self._by_id:
                tracker = Tracker(w.since, False, w.last_ts, w.value)
                self._trackers.setdefault(w.vehicle_id, {})[(w.rule_id, w.key)] = tracker
        for rule_id, vehicle_id, key in self._store.open_alert_keys():
            self._trackers.setdefault(vehicle_id, {})[(rule_id, key)] = Tracker(None, True, 0)

    def _load_rules(self) -> None:
        by_brand: dict[str, list[Compiled]] = {}
        for rule in self._store.all_rules():
            by_brand.setdefault(rule.brand, []).append(Compiled.of(rule))
        self._sets = {brand: RuleSet(rules) for brand, rules in by_brand.items()}
        self._by_id = {c.id: c for rules in by_brand.values() for c in rules}
        for trackers in self._trackers.values():
            for key in [k for k in trackers if k[0] not in self._by_id]:
                del trackers[key]
        self._next_reload = self._clock() + RELOAD_S

    def _drain(self) -> None:
        reload = self._clock() >= self._next_reload
        while True:
            try:
                what, rule_id, vehicle_id = self._inbox.get_nowait()
            except queue.Empty:
                break
            reload = reload or what == "reload"
            for vid, trackers in self._trackers.items():
                if vehicle_id is None or vid == vehicle_id:
                    for key in [k for k in trackers if k[0] == rule_id]:
                        if _pending(trackers.pop(key)):
                            self._forgotten.append((key[0], vid, key[1]))
        if reload:
            self._load_rules()

    # --- the stage (ingest thread) -------------------------------------------------------
    def __call__(self, batch: Batch) -> None:
        self._drain()
        if self._batch is not None:  # the previous batch was not committed: undo its values
            self._kept.undo()
        self._batch, self._work, self._changes = batch, {}, []
        self._forgotten_sent = 0
        if not self._sets:
            return
        self._seed(batch)
        for item in batch.live():
            vehicle = item.vehicle
            rules = self._sets.get(vehicle.brand) if vehicle is not None else None
            if rules is None or vehicle is None:
                continue
            now_ts = self._signals(item, rules, vehicle.id) if item.points else -1
            message = item.message
            if isinstance(message, Event):
                self._event(item, rules, vehicle.id, message)
                now_ts = max(now_ts, message.ts)
            if now_ts >= 0:
                self._elapse(item, vehicle.id, now_ts)
        for update in [u for u in batch.out.extra if isinstance(u, DtcUpdate) and u.changed]:
            rules = self._sets.get(update.brand)
            if rules is not None and rules.dtc:
                self._dtc(update, rules.dtc, batch.now_ms)
        if self._changes:
            batch.out.extra.append(AlertChanges(self._changes))
        pending = self._pending_changes()
        if pending is not None:
            batch.out.extra.append(pending)

    def _pending_changes(self) -> PendingChanges | None:
        """The waits this batch started or ended, compared with the committed trackers."""
        started: list[PendingWait] = []
        ended = list(self._forgotten)
        self._forgotten_sent = len(ended)
        for vid, new in self._work.items():
            old = self._trackers.get(vid) or {}
            for key, t in new.items():
                if _pending(t) and old.get(key) is not t:
                    assert t.since is not None
                    started.append(PendingWait(key[0], vid, key[1], t.since, t.last_ts, t.value))
            for key, t in old.items():
                if _pending(t) and not _pending(new.get(key)):
                    ended.append((key[0], vid, key[1]))
        return PendingChanges(started, ended) if started or ended else None

    def _seed(self, batch: Batch) -> None:
        """Fill in `while` guard values of vehicles first seen since start, from the twin."""
        wanted: dict[int, set[str]] = {}
        for item in batch.live():
            v = item.vehicle
            rules = self._sets.get(v.brand) if v is not None else None
            if v is not None and rules is not None and rules.guards and not self._kept.seeded(v.id):
                wanted.setdefault(v.id, set()).update(rules.seed_paths)
        if not wanted:
            return
        paths = set().union(*wanted.values())
        self._kept.seed(wanted, self._store.twin_values(wanted, paths))

    def _read(self, vid: int) -> dict[Key, Tracker] | None:
        return self._work[vid] if vid in self._work else self._trackers.get(vid)

    def _write(self, vid: int) -> dict[Key, Tracker]:
        mine = self._work.get(vid)
        if mine is None:
            mine = self._work[vid] = dict(self._trackers.get(vid) or {})
        return mine

    def _signals(self, item: Item, rules: RuleSet, vid: int) -> int:
        """Evaluate the item's watched points; returns the newest point's time."""
        message = item.message
        if isinstance(message, Telemetry):
            samples = message.samples
            sample = message.signals if samples is None else None
            if samples is not None and len(samples) == 1:
                sample = samples[0].signals
            guards = rules.guards
            if sample is not None and (not guards or guards.keys().isdisjoint(sample.keys())):
                self._one_sample(item, rules, vid)
                return item.points[0][1]
        return self._in_order(item, rules, vid)

    def _one_sample(self, item: Item, rules: RuleSet, vid: int) -> None:
        """The hot path: a message of one sample that carries no `while` guard.

        Its points share one time and name distinct paths, and no guard moves, so the order
        of evaluation cannot matter (sent order, as `_in_order` would keep it) and evaluating
        a point moves no other point's trackers: one pass, nothing sorted or collected.
        """
        cached = rules.paths
        trackers = self._read(vid)
        tracked = {k[1] for k in trackers} if trackers else _NONE
        kept = None
        for point in item.points:
            path = point[0]
            try:
                entry = cached[path]
            except KeyError:
                entry = rules.entry(path)
            if entry is None:
                continue  # no rule watches the path
            if entry.keep:
                if kept is None:
                    kept = self._kept.to_write(vid)
                kept[path] = point
            value: Any = point[2]  # any Value; a non-number raises TypeError below
            if path in tracked:
                assert trackers is not None
                for c in entry.rules:  # each moves only its own (rule, path) tracker
                    if (c.id, path) not in trackers:
                        try:
                            if not c.test(value):
                                continue  # nothing holds, nothing to remember
                        except TypeError:
                            continue  # a value of another type than the rule compares
                    self._evaluate(item, c, vid, path, point[1], value)
                continue
            try:
                if entry.floor < value < entry.ceiling:
                    continue  # inside the band where no rule of the path holds
            except TypeError:
                pass  # not a number: each rule decides below
            for c in entry.rules:
                try:
                    if not c.test(value):
                        continue  # the common case: nothing holds, nothing to remember
                except TypeError:
                    continue  # a value of another type than the rule compares
                self._evaluate(item, c, vid, path, point[1], value)

    def _in_order(self, item: Item, rules: RuleSet, vid: int) -> int:
        """Any message: points in time order, guards first at equal times."""
        cached, relevant, top, resort = rules.paths, None, -1, False
        first = item.points[0][1]
        for point in item.points:
            ts = point[1]
            if ts > top:
                top = ts
            entry = cached[point[0]] if point[0] in cached else rules.entry(point[0])
            if entry is not None:
                if relevant is None:
                    relevant = []
                relevant.append((point, entry))
                resort = resort or ts != first or bool(entry.guarded)
        if relevant is None:
            return top
        if resort:  # several samples, or a guard: in time order, guards first at equal times
            relevant.sort(key=order)
        tracked, kept = self._tracked(vid), None
        for point, entry in relevant:
            path, ts, value = point
            if entry.guarded:
                # Values sent at the same instant are evaluated after the guard, as sent.
                fresh = {p for (p, t, _), _e in relevant if t == ts}
                self._guard_changed(item, vid, point, entry.guarded, fresh)
                tracked = self._tracked(vid)
            elif entry.keep:
                if kept is None:
                    kept = self._kept.to_write(vid)
                kept[path] = point
            if path in tracked:
                for c in entry.rules:
                    self._evaluate(item, c, vid, path, ts, value)
                tracked = self._tracked(vid)
                continue
            number: Any = value  # any Value; a non-number raises TypeError below
            try:
                if entry.floor < number < entry.ceiling:
                    continue  # inside the band where no rule of the path holds
            except TypeError:
                pass  # not a number: each rule decides below
            for c in entry.rules:
                try:
                    if not c.test(value):
                        continue  # the common case: nothing holds, nothing to remember
                except TypeError:
                    continue  # a value of another type than the rule compares
                self._evaluate(item, c, vid, path, ts, value)
                tracked = self._tracked(vid)
        return top

    def _tracked(self, vid: int) -> frozenset[str] | set[str]:
        """The paths that have a tracker of this vehicle (usually none)."""
        trackers = self._read(vid)
        return {k[1] for k in trackers} if trackers else _NONE

    def _guard_value(self, vid: int, path: str | None) -> Any:
        point = self._kept.get(vid, path) if path else None
        return None if point is None else point[2]

    def _evaluate(self, item: Item, c: Compiled, vid: int, path: str, ts: int, value: Any) -> None:
        trackers = self._read(vid)
        key = (c.id, path)
        held = trackers.get(key) if trackers else None
        try:
            if held is None and not c.test(value):
                return  # the common case: nothing holds, nothing to remember
            guard_ok = c.guard is None or c.guard_holds(self._guard_value(vid, c.guard_path))
            new, transition = step(c, held, value, ts, guard_ok)
        except TypeError:
            return  # a value of another type than the rule compares (a VSS-only leaf)
        if new is not held:
            self._set(item, c, vid, key, new, transition, ts)

    def _guard_changed(
        self,
        item: Item,
        vid: int,
        point: Point,
        guarded: Iterable[Compiled],
        fresh: set[str],
    ) -> None:
        path, ts, value = point
        old = self._kept.get(vid, path)
        if old is not None and ts < old[1]:
            return  # a late sample does not move the guard back
        values = self._kept.to_write(vid)
        values[path] = point
        if old is not None and old[2] == value:
            return
        for c in guarded:
            trackers = self._read(vid) or {}
            if not c.guard_holds(value):
                for key, held in list(trackers.items()):
                    if key[0] == c.id:
                        self._set(item, c, vid, key, None, "resolve" if held.firing else None, ts)
                continue
            for watched, (_, _, last) in list(values.items()):
                if c.matches(watched) and watched not in fresh and (c.id, watched) not in trackers:
                    self._evaluate(item, c, vid, watched, ts, last)

    def _set(
        self,
        item: Item,
        c: Compiled,
        vid: int,
        key: Key,
        new: Tracker | None,
        transition: str | None,
        ts: int,
    ) -> None:
        trackers = self._write(vid)
        if new is None:
            trackers.pop(key, None)
        else:
            trackers[key] = new
        if transition is None:
            return
        if any(t.firing for k, t in trackers.items() if k[0] == c.id and k != key):
            return  # an alert is per rule and vehicle: another path keeps it open
        assert item.vin is not None and item.vehicle is not None
        if transition == OPEN:
            value = new.value if new is not None else None
            self._opened(
                c, vid, item.vin, item.vehicle.brand, key[1], value, ts, detail(c, key[1], value)
            )
        else:
            self._changes.append(
                AlertResolved(
                    c.id, vid, item.vin, item.vehicle.brand, "cleared", ts, item.inbound.received_ms
                )
            )

    def _opened(
        self,
        c: Compiled,
        vid: int,
        vin: str,
        brand: str,
        key: str,
        value: Any,
        ts: int,
        detail: str,
    ) -> None:
        assert self._batch is not None
        rule = c.rule
        self._changes.append(
            AlertOpened(
                rule.id,
                rule.name,
                brand,
                vid,
                vin,
                rule.severity.label,
                key,
                value,
                detail,
                ts,
                self._batch.now_ms,
            )
        )

    def _elapse(self, item: Item, vid: int, now_ts: int) -> None:
        trackers = self._read(vid)
        if not trackers:
            return
        due = None
        for key, held in trackers.items():
            since = held.since
            if since is None or held.firing:
                continue
            c = self._by_id.get(key[0])
            if c is not None and now_ts - since >= c.for_ms:  # what `elapsed` would open
                due = [] if due is None else due
                due.append((key, held, c))
        for key, held, c in due or ():
            new, transition = elapsed(c, held, now_ts)
            if transition is not None:
                self._set(item, c, vid, key, new, transition, now_ts)

    def _event(self, item: Item, rules: RuleSet, vid: int, message: Event) -> None:
        assert item.vin is not None and item.vehicle is not None
        for c in rules.events.get(message.type, ()):
            trackers = self._write(vid)
            held = trackers.get((c.id, ""))
            if held is None or not held.firing:
                trackers[(c.id, "")] = Tracker(None, True, message.ts)
                detail = f"event {message.type} at vehicle time {message.ts}"
                self._opened(
                    c, vid, item.vin, item.vehicle.brand, "", message.data, message.ts, detail
                )
        for c in rules.clears.get(message.type, ()):
            trackers = self._read(vid) or {}
            held = trackers.get((c.id, ""))
            if held is not None and held.firing:
                self._write(vid).pop((c.id, ""))
                self._changes.append(
                    AlertResolved(
                        c.id,
                        vid,
                        item.vin,
                        item.vehicle.brand,
                        message.type,
                        message.ts,
                        item.inbound.received_ms,
                    )
                )

    def _dtc(
        self, update: DtcUpdate, rules: list[tuple[Compiled, EventCondition]], now_ms: int
    ) -> None:
        ts = max(t.ts for t in update.transitions)
        vid = update.vehicle_id
        for c, condition in rules:
            matching = [code for code in update.active if dtc_matches(condition, code)]
            held = (self._read(vid) or {}).get((c.id, ""))
            firing = held is not None and held.firing
            if matching and not firing:
                self._write(vid)[(c.id, "")] = Tracker(None, True, ts)
                shown = ", ".join(f"{code} ({severity(code).label})" for code in matching)
                self._opened(
                    c, vid, update.vin, update.brand, "", matching, ts, f"active DTC {shown}"
                )
            elif firing and not matching:
                self._write(vid).pop((c.id, ""))
                self._changes.append(
                    AlertResolved(c.id, vid, update.vin, update.brand, "codes cleared", ts, now_ms)
                )

    # --- after commit --------------------------------------------------------------------
    def committed(self, batch: Batch) -> None:
        """Adopt the batch's trackers and publish its alert changes."""
        if self._batch is not batch:
            return
        for vid, trackers in self._work.items():
            if trackers:
                self._trackers[vid] = trackers
            else:
                self._trackers.pop(vid, None)
        self._batch, self._work = None, {}
        self._kept.adopt()
        del self._forgotten[: self._forgotten_sent]
        self._forgotten_sent = 0
        published = [
            Change("alert", r.vin, r.brand, alert_change(r))
            for r in self._changes
            if r.id is not None
        ]
        self._changes = []
        if published:
            self._hub.publish(published)


def _pending(t: Tracker | None) -> bool:
    """A wait under way: the condition holds, not yet for `for_s`."""
    return t is not None and t.since is not None and not t.firing


__all__ = ["AlertStage"]
