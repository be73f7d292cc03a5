"""The alert-rule ingest stage: evaluates every tenant's rules on each batch, cheaply.

Cheap by construction: rules are indexed per brand by signal path (a `*` pattern is matched
once per path, then cached), and each path seen has its band, the open interval of values
where none of its rules can hold (the whole line for a path no rule watches), kept as a plain
pair: a point inside it costs one dict lookup and one chained comparison. Outside the band
only the rules it can meet are tested (`Entry.holding`). A message of one sample without a
guard (nearly all) is evaluated in one pass as sent (`_one_sample`), and for a vehicle with no
tracker and no remembered watched value (nearly all) that pass is the band test alone; any
other message in time order, guards first (`_in_order`).

State lives per vehicle: trackers by path and rule (pending or firing, plain tuples; a path
is "tracked" in one dict lookup) and remembered values (`alert_values`). Both change in
place; a vehicle's trackers are copied before the batch first changes them (``_saved``) and
its values likewise, so a batch retried after a failed commit is first undone and then
evaluated from the same state; after the commit (``committed``) the copies are dropped, and
what they differ in are the batch's pending-wait changes. Pending waits are due at
``since + for_s``: a vehicle's earliest due time is kept as a lower bound (``_due``), so
vehicle time passing costs a scan of its trackers only when one may be due. A rule deleted or
changed (here or, seen at the next reload, by another process) keeps no tracker.

Transitions go to ``WriteBatch.extra`` as one :class:`AlertChanges` record, written in the
ingest transaction; after commit they are published as ``alert`` changes. Pending waits (a
``for_s`` condition holding, not yet long enough) go the same way as one
:class:`PendingChanges` record — only when a wait starts or ends, not per sample, and not
at all for a wait that starts and ends within one batch — so a restart resumes a wait where
it was (in vehicle time) instead of starting it over. Open alerts and pending waits are
restored from the store at start; other threads (the API) ask for a rule reload or for a
tracker to be forgotten through a queue that the stage drains on the ingest thread (a
forgotten wait is deleted with the next batch).
"""

import logging
import math
import queue
import time
from collections.abc import Callable, Iterable
from functools import partial
from operator import eq
from typing import Any, Final

from autocloud.domain.alert_eval import (
    FIRING,
    LAST_TS,
    OPEN,
    RESOLVE,
    SINCE,
    VALUE,
    Compiled,
    Tracker,
    dtc_matches,
    elapsed,
    pending,
    step,
    tracker,
)
from autocloud.domain.alerts import (
    AlertChanges,
    AlertOpened,
    AlertResolved,
    AlertRule,
    EventCondition,
    PendingChanges,
    PendingWait,
)
from autocloud.domain.dtc import severity
from autocloud.domain.dtc_active import DtcUpdate
from autocloud.domain.protocol import Event, Telemetry
from autocloud.ports.diagnostics import AlertStore
from autocloud.services.alert_index import Entry, RuleSet, alert_change, detail, order
from autocloud.services.alert_values import KeptValues, Point
from autocloud.services.fanout import Change, Hub
from autocloud.services.ingest.stages import Batch, Item

log = logging.getLogger(__name__)
RELOAD_S: Final = 5.0  # rules changed by another process are picked up this late at most
SEED_LIMIT: Final = 200_000  # vehicles whose guard values are kept
NEVER: Final = math.inf
ByRule = dict[int, Tracker]  # one path's trackers by rule id
ByPath = dict[str, ByRule]  # one vehicle's trackers by signal path ("" for event rules)
_NO_TRACKERS: Final[ByPath] = {}
_NO_VALUES: Final[dict[str, Point]] = {}
_NO_RULES: Final[ByRule] = {}


class AlertStage:
    """Ingest stage and after-commit listener for alert rules."""

    def __init__(self, store: AlertStore, hub: Hub, clock: Callable[[], float] = time.monotonic):
        self._store = store
        self._hub = hub
        self._clock = clock
        self._inbox: queue.SimpleQueue[tuple[str, int | None, int | None]] = queue.SimpleQueue()
        self._rules: list[AlertRule] | None = None
        self._sets: dict[str, RuleSet] = {}
        self._by_id: dict[int, Compiled] = {}
        self._trackers: dict[int, ByPath] = {}  # never holds an empty dict
        # Each vehicle's trackers before the batch first changed them (None: it had none).
        self._saved: dict[int, ByPath | None] = {}
        self._due: dict[int, float] = {}  # no pending wait of the vehicle is due before
        self._kept = KeptValues(SEED_LIMIT)  # guard and watched values, undone on a retry
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
                by_path = self._trackers.setdefault(w.vehicle_id, {})
                by_path.setdefault(w.key, {})[w.rule_id] = tracker(
                    w.since, False, w.last_ts, w.value
                )
        for rule_id, vehicle_id, key in self._store.open_alert_keys():
            by_path = self._trackers.setdefault(vehicle_id, {})
            by_path.setdefault(key, {})[rule_id] = tracker(None, True, 0)
        self._due.clear()  # unknown: found on the first scan

    def _load_rules(self) -> None:
        self._next_reload = self._clock() + RELOAD_S
        rules = self._store.all_rules()
        if rules == self._rules:
            return  # nothing changed: keep the index and its path cache
        before = {c.id: c.rule for c in self._by_id.values()}
        self._rules = list(rules)  # a copy: the store may hand back one it changes later
        by_brand: dict[str, list[Compiled]] = {}
        for rule in rules:
            by_brand.setdefault(rule.brand, []).append(Compiled.of(rule))
        self._sets = {brand: RuleSet(compiled) for brand, compiled in by_brand.items()}
        self._by_id = {c.id: c for compiled in by_brand.values() for c in compiled}
        # A rule deleted or changed (here or by another process, whose store resolved its
        # alerts and dropped its waits) keeps no tracker: a path's trackers are always of
        # rules that watch it.
        kept = {rule_id for rule_id, c in self._by_id.items() if before.get(rule_id) == c.rule}
        if before:
            self._drop_trackers(lambda rule_id: rule_id not in kept)
        self._due.clear()  # unknown: found on the next scan

    def _drop_trackers(
        self, gone: Callable[[int], bool], vehicle_id: int | None = None
    ) -> list[tuple[int, int, str, Tracker]]:
        """Remove (outside any batch) the trackers of the rules `gone` names, of every
        vehicle or of one; returns what was removed as (rule, vehicle, path, tracker)."""
        removed = []
        vids = list(self._trackers) if vehicle_id is None else [vehicle_id]
        for vid in vids:
            by_path = self._trackers.get(vid)
            if by_path is None:
                continue
            for path, by_rule in list(by_path.items()):
                for rule_id in [r for r in by_rule if gone(r)]:
                    removed.append((rule_id, vid, path, by_rule.pop(rule_id)))
                if not by_rule:
                    del by_path[path]
            if not by_path:
                del self._trackers[vid]
        return removed

    def _drain(self) -> None:
        reload = self._clock() >= self._next_reload
        while True:
            try:
                what, rule_id, vehicle_id = self._inbox.get_nowait()
            except queue.Empty:
                break
            reload = reload or what == "reload"
            for rid, vid, path, held in self._drop_trackers(partial(eq, rule_id), vehicle_id):
                if pending(held):
                    self._forgotten.append((rid, vid, path))
        if reload:
            self._load_rules()

    # --- trackers ------------------------------------------------------------------------
    def _get(self, vid: int, rule_id: int, path: str) -> Tracker | None:
        by_path = self._trackers.get(vid)
        by_rule = by_path.get(path) if by_path is not None else None
        return by_rule.get(rule_id) if by_rule is not None else None

    def _put(self, vid: int, c: Compiled, path: str, new: Tracker | None) -> None:
        """Set (or with None remove) a tracker, saving the one before for undo and diff."""
        if vid not in self._saved:
            self._save(vid)
        by_path = self._trackers.get(vid)
        by_rule = by_path.get(path) if by_path is not None else None
        old = by_rule.get(c.id) if by_rule is not None else None
        if new is None:
            if by_rule is not None and old is not None:
                del by_rule[c.id]
                if not by_rule:
                    assert by_path is not None
                    del by_path[path]
                    if not by_path:
                        del self._trackers[vid]
                        self._due.pop(vid, None)
            return
        if by_rule is None:
            if by_path is None:
                by_path = self._trackers[vid] = {}
                self._due[vid] = NEVER  # no tracker before this one
            by_rule = by_path[path] = {}
        by_rule[c.id] = new
        since = new[SINCE]
        if since is not None and not new[FIRING]:
            due = self._due.get(vid)
            if due is not None and since + c.for_ms < due:
                self._due[vid] = since + c.for_ms

    def _remove(self, vid: int, rule_id: int, path: str) -> None:
        """`_put` of None where the rule has a tracker."""
        if vid not in self._saved:
            self._save(vid)
        by_path = self._trackers[vid]
        by_rule = by_path[path]
        del by_rule[rule_id]
        if not by_rule:
            del by_path[path]
            if not by_path:
                del self._trackers[vid]
                self._due.pop(vid, None)

    def _save(self, vid: int) -> None:
        """Keep a copy of the vehicle's trackers as they were before the batch changed them."""
        by_path = self._trackers.get(vid)
        self._saved[vid] = (
            None if by_path is None else {path: dict(rules) for path, rules in by_path.items()}
        )

    def _undo(self) -> None:
        """Back to the state before the batch (its commit failed)."""
        for vid, saved in self._saved.items():
            if saved is None:
                self._trackers.pop(vid, None)
            else:
                self._trackers[vid] = saved
            self._due.pop(vid, None)  # unknown: found on the next scan
        self._saved = {}
        self._kept.undo()

    # --- the stage (ingest thread) -------------------------------------------------------
    def __call__(self, batch: Batch) -> None:
        if self._batch is not None:  # the previous batch was not committed: undo it
            self._undo()
        self._drain()
        self._batch, self._saved, self._changes = batch, {}, []
        self._forgotten_sent = 0
        if not self._sets:
            return
        live = batch.live()
        self._seed(live)
        sets, trackers, due, watched = self._sets, self._trackers, self._due, self._kept.watched
        for item in live:
            vehicle = item.vehicle
            if vehicle is None:
                continue
            rules = sets.get(vehicle.brand)
            if rules is None:
                continue
            vid = vehicle.id
            message = item.message
            points = item.points
            if points and type(message) is Telemetry:
                # One sample that carries no `while` guard: `_one_sample`.
                samples = message.samples
                if samples is None:
                    sample = message.signals
                else:
                    sample = samples[0].signals if len(samples) == 1 else None
                lone = rules.lone_guard
                one = sample is not None and (
                    lone not in sample
                    if lone is not None
                    else sample.keys().isdisjoint(rules.guard_set)
                )
            else:
                one = False
            if one:
                if vid in trackers or vid in watched:
                    self._one_sample_tracked(item, rules, vid)
                else:
                    self._one_sample(item, rules, vid)
                now_ts = points[0][1]
            else:
                now_ts = self._in_order(item, rules, vid) if points else -1
                if isinstance(message, Event):
                    self._event(item, rules, vid, message)
                    now_ts = max(now_ts, message.ts)
            # A wait may be due only from its vehicle's earliest due time on (unknown: -inf).
            if now_ts >= 0 and vid in trackers and now_ts >= due.get(vid, -NEVER):
                self._elapse(item, vid, now_ts)
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
        """The waits this batch started or ended: the trackers of each vehicle it changed
        against their copy from before (a wait that started and ended within it is neither)."""
        started: list[PendingWait] = []
        ended = list(self._forgotten)
        self._forgotten_sent = len(ended)
        for vid, saved in self._saved.items():
            now = self._trackers.get(vid) or _NO_TRACKERS
            then = saved or _NO_TRACKERS
            for path, by_rule in now.items():
                old_rules = then.get(path) or _NO_RULES
                for rule_id, t in by_rule.items():
                    since = t[SINCE]
                    if since is not None and not t[FIRING] and old_rules.get(rule_id) is not t:
                        started.append(PendingWait(rule_id, vid, path, since, t[LAST_TS], t[VALUE]))
            for path, by_rule in then.items():
                new_rules = now.get(path) or _NO_RULES
                for rule_id, t in by_rule.items():
                    if pending(t) and not pending(new_rules.get(rule_id)):
                        ended.append((rule_id, vid, path))
        if not started and not ended:
            return None
        # In key order (the table's primary key): the same rows whichever way the batch was
        # evaluated, and row locks always taken in one order.
        started.sort()
        ended.sort()
        return PendingChanges(started, ended)

    def _seed(self, live: list[Item]) -> None:
        """Fill in `while` guard values (and watched values that may meet a rule) of
        vehicles first seen since start, from the twin."""
        seen = {item.vehicle.id: item.vehicle for item in live if item.vehicle is not None}
        wanted: dict[int, RuleSet] = {}
        for vid in self._kept.unseeded(seen):
            rules = self._sets.get(seen[vid].brand)
            if rules is not None and rules.guards:
                wanted[vid] = rules
        if not wanted:
            return
        paths = set().union(*(rules.seed_paths for rules in wanted.values()))
        guards: dict[int, dict[str, tuple[int, Any]]] = {}
        watched: dict[int, dict[str, tuple[int, Any]]] = {}
        for vid, found in self._store.twin_values(wanted, paths).items():
            rules = wanted[vid]
            for path, (ts, value) in found.items():
                if path in rules.guards:
                    guards.setdefault(vid, {})[path] = (ts, value)
                    continue
                entry = rules.paths[path] if path in rules.paths else rules.entry(path)
                if entry is not None and entry.keep and not entry.quiet(value):
                    watched.setdefault(vid, {})[path] = (ts, value)
        self._kept.seed(wanted, guards, watched)

    def _one_sample(self, item: Item, rules: RuleSet, vid: int) -> None:
        """The hot path: a message of one sample that carries no `while` guard.

        Its points share one time and name distinct paths, and no guard moves, so the order
        of evaluation cannot matter (sent order, as `_in_order` would keep it) and evaluating
        a point moves no other point's trackers or values: one pass, nothing sorted or
        collected. For a vehicle with no tracker and no watched value, a point inside its
        band (nearly every point) needs nothing else. For a vehicle with trackers or watched
        values: `_one_sample_tracked`.
        """
        bands = rules.bands
        value: Any  # any Value; a non-number raises TypeError below
        for path, ts, value in item.points:
            try:
                floor, ceiling = bands[path]
            except KeyError:  # a path seen for the first time
                floor, ceiling = rules.band(path)
            try:
                if floor < value < ceiling:
                    continue  # inside the band where no rule of the path holds (or no rule)
            except TypeError:
                pass  # not a number: each rule decides
            entry = rules.paths[path]
            if entry is not None:
                self._untracked(item, entry, vid, (path, ts, value))

    def _one_sample_tracked(self, item: Item, rules: RuleSet, vid: int) -> None:
        """`_one_sample` for a vehicle with trackers or watched values."""
        cached, bands = rules.paths, rules.bands
        tracked = self._trackers.get(vid) or _NO_TRACKERS
        watched = self._kept.watched.get(vid) or _NO_VALUES
        saved = self._saved
        value: Any  # any Value; a non-number raises TypeError below
        for point in item.points:
            path, ts, value = point
            if path in tracked or path in watched:
                try:
                    entry = cached[path]
                except KeyError:
                    entry = rules.entry(path)
                if entry is None:
                    continue
                by_rule = tracked.get(path)
                if by_rule is not None and len(by_rule) == 1 and path not in watched:
                    # The common case inline: one wait whose condition stops holding.
                    try:
                        quiet = entry.floor < value < entry.ceiling
                    except TypeError:
                        quiet = False
                    if quiet:
                        [held] = by_rule.values()
                        if not held[FIRING]:
                            if ts >= held[LAST_TS]:  # what `step` returns: nothing
                                # `_put` of None, inline: the rule's only tracker on the path
                                if vid not in saved:
                                    self._save(vid)
                                del tracked[path]
                                if not tracked:
                                    del self._trackers[vid]
                                    self._due.pop(vid, None)
                            continue
                self._revisit(item, entry, vid, point, path in watched)
                continue
            try:
                floor, ceiling = bands[path]
            except KeyError:  # a path seen for the first time
                floor, ceiling = rules.band(path)
            try:
                if floor < value < ceiling:
                    continue
            except TypeError:
                pass
            entry = cached[path]
            if entry is not None:
                self._untracked(item, entry, vid, point)

    def _untracked(self, item: Item, entry: Entry, vid: int, point: Point) -> None:
        """A value outside its band on a path without trackers or a watched value."""
        path, ts, value = point
        if entry.keep:
            self._kept.keep(vid, point)
        for c in entry.holding(value):
            if not c.waits:
                self._start(item, c, vid, path, ts, value)
                continue
            # A wait starts: what `step` returns here, and `_put` of it, inline.
            wait = (ts, False, ts, value)
            at = ts + c.for_ms
            if vid not in self._saved:
                self._save(vid)
            by_path = self._trackers.get(vid)
            if by_path is None:
                self._trackers[vid] = {path: {c.id: wait}}
                self._due[vid] = at
                continue
            by_rule = by_path.get(path)
            if by_rule is None:
                by_path[path] = {c.id: wait}
            else:
                by_rule[c.id] = wait
            due = self._due.get(vid)  # None: unknown, found on the next scan
            if due is not None and at < due:
                self._due[vid] = at

    def _revisit(self, item: Item, entry: Entry, vid: int, point: Point, kept: bool) -> None:
        """A value on a path with trackers (or a `kept` watched value) of this vehicle."""
        path, ts, value = point
        try:
            quiet = entry.floor < value < entry.ceiling
        except TypeError:
            quiet = False
        if entry.keep and not quiet:
            self._kept.keep(vid, point)
        elif kept:
            self._kept.drop(vid, path)
        by_path = self._trackers.get(vid)
        by_rule = by_path.get(path) if by_path is not None else None
        if by_rule is None:
            if not quiet:
                for c in entry.holding(value):
                    self._start(item, c, vid, path, ts, value)
            return
        if not quiet:
            for c in entry.rules:  # each moves only its own (rule, path) tracker
                self._evaluate(item, c, vid, path, ts, value)
            return
        # No test holds: a wait ends (unless the sample is late), an open alert may clear;
        # in rule order, as `_in_order` (one tracker: its rule watches the path).
        if len(by_rule) == 1:
            [(rule_id, held)] = by_rule.items()
            if not held[FIRING]:
                if ts >= held[LAST_TS]:  # what `step` returns: nothing to keep
                    self._remove(vid, rule_id, path)
                return
        for c in entry.rules:
            if c.id not in by_rule:
                continue
            held = by_rule[c.id]
            if held[FIRING]:
                self._evaluate(item, c, vid, path, ts, value)
            elif ts >= held[LAST_TS]:
                self._remove(vid, c.id, path)

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
        kept = self._kept
        for point, entry in relevant:
            path, ts, value = point
            quiet = entry.quiet(value)
            if entry.guarded:
                # Values sent at the same instant are evaluated after the guard, as sent.
                fresh = {p for (p, t, _), _e in relevant if t == ts}
                self._guard_changed(item, vid, point, entry.guarded, fresh)
            elif entry.keep and not quiet:
                kept.keep(vid, point)
            else:
                kept.drop(vid, path)
            by_path = self._trackers.get(vid)
            by_rule = by_path.get(path) if by_path is not None else None
            if by_rule is not None:
                for c in entry.rules:
                    self._evaluate(item, c, vid, path, ts, value)
            elif not quiet:
                for c in entry.holding(value):
                    self._start(item, c, vid, path, ts, value)
        return top

    def _guard_value(self, vid: int, path: str | None) -> Any:
        point = self._kept.guard(vid, path) if path else None
        return None if point is None else point[2]

    def _start(self, item: Item, c: Compiled, vid: int, path: str, ts: int, value: Any) -> None:
        """A rule whose test holds, on a path where it has no tracker."""
        guard_ok = c.guard is None or c.guard_holds(self._guard_value(vid, c.guard_path))
        new, transition = step(c, None, value, ts, guard_ok)
        if new is not None:
            self._set(item, c, vid, path, new, transition, ts)

    def _evaluate(self, item: Item, c: Compiled, vid: int, path: str, ts: int, value: Any) -> None:
        held = self._get(vid, c.id, path)
        try:
            if held is None and not c.test(value):
                return  # the common case: nothing holds, nothing to remember
            guard_ok = c.guard is None or c.guard_holds(self._guard_value(vid, c.guard_path))
            new, transition = step(c, held, value, ts, guard_ok)
        except TypeError:
            return  # a value of another type than the rule compares (a VSS-only leaf)
        if new is not held:
            self._set(item, c, vid, path, new, transition, ts)

    def _guard_changed(
        self,
        item: Item,
        vid: int,
        point: Point,
        guarded: Iterable[Compiled],
        fresh: set[str],
    ) -> None:
        path, ts, value = point
        old = self._kept.guard(vid, path)
        if old is not None and ts < old[1]:
            return  # a late sample does not move the guard back
        self._kept.set_guard(vid, point)
        if old is not None and old[2] == value:
            return
        for c in guarded:
            if not c.guard_holds(value):
                for held_path, by_rule in list((self._trackers.get(vid) or {}).items()):
                    held = by_rule.get(c.id)
                    if held is not None:
                        resolve = RESOLVE if held[FIRING] else None
                        self._set(item, c, vid, held_path, None, resolve, ts)
                continue
            for watched, _, last in self._kept.points(vid):
                if (
                    c.matches(watched)
                    and watched not in fresh
                    and self._get(vid, c.id, watched) is None
                ):
                    self._evaluate(item, c, vid, watched, ts, last)

    def _set(
        self,
        item: Item,
        c: Compiled,
        vid: int,
        path: str,
        new: Tracker | None,
        transition: str | None,
        ts: int,
    ) -> None:
        self._put(vid, c, path, new)
        if transition is None:
            return
        for other, by_rule in (self._trackers.get(vid) or {}).items():
            held = by_rule.get(c.id) if other != path else None
            if held is not None and held[FIRING]:
                return  # an alert is per rule and vehicle: another path keeps it open
        assert item.vin is not None and item.vehicle is not None
        if transition == OPEN:
            value = new[VALUE] if new is not None else None
            self._opened(
                c, vid, item.vin, item.vehicle.brand, path, value, ts, detail(c, path, value)
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
        """Open the pending waits of the vehicle that vehicle time has made due."""
        due = self._due.get(vid)
        if due is not None and now_ts < due:
            return  # the common case: no wait can be due yet
        found = None
        earliest = NEVER
        for path, by_rule in (self._trackers.get(vid) or {}).items():
            for rule_id, held in by_rule.items():
                since = held[SINCE]
                if since is None or held[FIRING]:
                    continue
                c = self._by_id.get(rule_id)
                if c is None:
                    continue
                if now_ts - since >= c.for_ms:  # what `elapsed` would open
                    found = [] if found is None else found
                    found.append((path, held, c))
                elif since + c.for_ms < earliest:
                    earliest = since + c.for_ms
        self._due[vid] = earliest
        if found is not None and len(found) > 1:
            # Several at once: the wait that started first opens first (then by path), so
            # of one `*` rule's waits that one names the alert.
            found.sort(key=_started)
        for path, held, c in found or ():
            new, transition = elapsed(c, held, now_ts)
            if transition is not None:
                self._set(item, c, vid, path, new, transition, now_ts)

    def _event(self, item: Item, rules: RuleSet, vid: int, message: Event) -> None:
        assert item.vin is not None and item.vehicle is not None
        for c in rules.events.get(message.type, ()):
            held = self._get(vid, c.id, "")
            if held is None or not held[FIRING]:
                self._put(vid, c, "", tracker(None, True, message.ts))
                detail = f"event {message.type} at vehicle time {message.ts}"
                self._opened(
                    c, vid, item.vin, item.vehicle.brand, "", message.data, message.ts, detail
                )
        for c in rules.clears.get(message.type, ()):
            held = self._get(vid, c.id, "")
            if held is not None and held[FIRING]:
                self._put(vid, c, "", None)
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
            held = self._get(vid, c.id, "")
            firing = held is not None and held[FIRING]
            if matching and not firing:
                self._put(vid, c, "", tracker(None, True, ts))
                shown = ", ".join(f"{code} ({severity(code).label})" for code in matching)
                self._opened(
                    c, vid, update.vin, update.brand, "", matching, ts, f"active DTC {shown}"
                )
            elif firing and not matching:
                self._put(vid, c, "", None)
                self._changes.append(
                    AlertResolved(c.id, vid, update.vin, update.brand, "codes cleared", ts, now_ms)
                )

    # --- after commit --------------------------------------------------------------------
    def committed(self, batch: Batch) -> None:
        """Keep the batch's trackers and values and publish its alert changes."""
        if self._batch is not batch:
            return
        self._batch, self._saved = None, {}
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


def _started(due: tuple[str, Tracker, Compiled]) -> tuple[int, str]:
    since = due[1][SINCE]
    assert since is not None
    return since, due[0]


__all__ = ["AlertStage"]
