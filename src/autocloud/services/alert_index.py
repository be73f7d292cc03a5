"""Alert rules indexed per brand for the ingest hot path, and how transitions are shown.

A :class:`RuleSet` holds one brand's compiled rules: signal rules reachable by path (a `*`
pattern is matched the first time a path is seen, then cached with the answer, including
"no rule": the next lookup is one dict hit), `while` guards by their path, DTC rules, and
event rules by event type and by clearing type. Beside each cached answer it keeps the path's
band as a plain pair (`bands`), which is all the hot path reads for a point inside it.

Each watched path's :class:`Entry` carries the open band of values where none of its rules
holds (one chained comparison answers for all of them: the common case), and its ordering
rules sorted by threshold, so a value outside the band tests only the rules it can meet.
"""

import math
from bisect import bisect_left
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from autocloud.domain.alert_eval import Compiled
from autocloud.domain.alerts import (
    AlertOpened,
    AlertResolved,
    EventCondition,
    Op,
    SignalCondition,
)


@dataclass(frozen=True, slots=True)
class Entry:
    """What one signal path means to one brand's rules."""

    rules: tuple[Compiled, ...]  # rules watching the path, in rule order
    guarded: tuple[Compiled, ...]  # rules whose `while` guard is the path
    keep: bool  # a guarded rule watches it: remember a value that may meet a rule
    order: int  # guards first at equal time
    # No rule can hold while floor < value < ceiling (all rules are numeric < <= > >=):
    # one comparison then answers for all of them. Otherwise floor = ceiling = nan (never).
    floor: float = math.nan
    ceiling: float = math.nan
    # With a band: the `>`/`>=` rules by rising threshold and the `<`/`<=` rules by falling
    # one, so the rules a value meets are a prefix of one of them, found by bisecting their
    # thresholds (`high_at`, and `low_at` negated to rise too), each prefix in rule order
    # made once (see `holding`).
    high: tuple[Compiled, ...] = ()
    low: tuple[Compiled, ...] = ()
    high_at: tuple[float, ...] = ()
    low_at: tuple[float, ...] = ()
    high_held: tuple[tuple[Compiled, ...], ...] = ((),)
    low_held: tuple[tuple[Compiled, ...], ...] = ((),)
    # The next threshold out on each side (see `_next_out`): a value strictly between it and
    # the band meets exactly the rules of the nearest threshold, the common case of `holding`.
    above: float = math.inf
    below: float = -math.inf

    def quiet(self, value: Any) -> bool:
        """Whether no rule of the path can hold for `value` (inside the band)."""
        try:
            inside: bool = self.floor < value < self.ceiling
        except TypeError:
            return False  # not a number: each rule decides
        return inside

    def holding(self, value: Any) -> Sequence[Compiled]:
        """The rules whose test holds for `value`, in rule order (a wrong type holds none)."""
        if self.floor != self.floor:  # no band
            return self.tested(value)
        try:
            if self.ceiling < value < self.above:
                return self.high_held[1]
            if self.below < value < self.floor:
                return self.low_held[1]
            up = value >= self.ceiling
            down = value <= self.floor
        except TypeError:
            return ()  # every rule of the path compares numbers
        if up == down:  # both: the rules overlap (no band at all); neither: nan
            return self.tested(value) if up else ()
        # The rules whose threshold the value passes; at a threshold equal to the value
        # `>=` holds and `>` does not: then each rule's test says.
        if up:
            held = bisect_left(self.high_at, value)
            if held < len(self.high_at) and self.high_at[held] == value:
                return self.tested(value)
            return self.high_held[held]
        held = bisect_left(self.low_at, -value)
        if held < len(self.low_at) and self.low_at[held] == -value:
            return self.tested(value)
        return self.low_held[held]

    def tested(self, value: Any) -> list[Compiled]:
        """`holding` the long way: each rule's test."""
        out = []
        for c in self.rules:
            try:
                if c.test(value):
                    out.append(c)
            except TypeError:
                pass
        return out


class RuleSet:
    """One brand's rules, indexed for the hot path."""

    def __init__(self, compiled: Sequence[Compiled]) -> None:
        self.signal = [c for c in compiled if isinstance(c.rule.condition, SignalCondition)]
        self.dtc: list[tuple[Compiled, EventCondition]] = []
        self.events: dict[str, list[Compiled]] = {}
        self.clears: dict[str, list[Compiled]] = {}
        for c in compiled:
            cond = c.rule.condition
            if isinstance(cond, EventCondition) and cond.is_dtc:
                self.dtc.append((c, cond))
            elif isinstance(cond, EventCondition):
                self.events.setdefault(cond.type, []).append(c)
                if cond.clear_type:
                    self.clears.setdefault(cond.clear_type, []).append(c)
        self.guards: dict[str, list[Compiled]] = {}
        for c in self.signal:
            if c.guard_path is not None:
                self.guards.setdefault(c.guard_path, []).append(c)
        self.guard_set = frozenset(self.guards)
        # The one guard path, to test a sample with `in` (a fifth of `isdisjoint`'s cost);
        # "" (no signal's path) with no guard; None with several: then `guard_set`.
        self.lone_guard: str | None = (
            next(iter(self.guards)) if len(self.guards) == 1 else None if self.guards else ""
        )
        self.seed_paths = set(self.guards) | {
            p for c in self.signal if c.guard_path and "*" not in (p := _path_of(c))
        }
        self.paths: dict[str, Entry | None] = {}
        # Each path of `paths` with its entry's band, as (floor, ceiling); a path no rule cares
        # about has the whole line (-inf, inf), a path whose rules have no band (nan, nan).
        self.bands: dict[str, tuple[float, float]] = {}

    def band(self, path: str) -> tuple[float, float]:
        """The band of a path not in `bands` yet: its entry is found (and both are cached)."""
        self.entry(path)
        return self.bands[path]

    def entry(self, path: str) -> Entry | None:
        """The (cached) meaning of `path`, its band kept in `bands`; None when no rule cares."""
        rules = tuple(c for c in self.signal if c.matches(path))
        guarded = tuple(self.guards.get(path, ()))
        keep = any(c.guard_path is not None for c in rules)
        floor, ceiling = _band(rules)
        high: tuple[Compiled, ...] = ()
        low: tuple[Compiled, ...] = ()
        if floor == floor:
            high = tuple(sorted((c for c in rules if _op(c) in (Op.GT, Op.GE)), key=_rising))
            low = tuple(sorted((c for c in rules if _op(c) in (Op.LT, Op.LE)), key=_falling))
        found = (
            Entry(
                rules,
                guarded,
                keep,
                0 if guarded else 1,
                floor,
                ceiling,
                high,
                low,
                tuple(_threshold(c) for c in high),
                tuple(-_threshold(c) for c in low),
                _prefixes(high),
                _prefixes(low),
                *_next_out(floor, ceiling, high, low),
            )
            if rules or guarded
            else None
        )
        self.paths[path] = found
        self.bands[path] = _ALL if found is None else (found.floor, found.ceiling)
        return found


_ALL: tuple[float, float] = (-math.inf, math.inf)


def _next_out(
    floor: float, ceiling: float, high: Sequence[Compiled], low: Sequence[Compiled]
) -> tuple[float, float]:
    """`Entry.above` and `Entry.below`: the second threshold of each side (inf / -inf when a
    side has fewer), or an empty interval on both when the sides overlap (floor >= ceiling
    means some values meet rules of both sides)."""
    if not floor < ceiling:
        return -math.inf, math.inf
    return (
        _threshold(high[1]) if len(high) > 1 else math.inf,
        _threshold(low[1]) if len(low) > 1 else -math.inf,
    )


def _prefixes(side: tuple[Compiled, ...]) -> tuple[tuple[Compiled, ...], ...]:
    """Each prefix of `side` (by length) in rule order."""
    return tuple(tuple(sorted(side[:n], key=_rule_id)) for n in range(len(side) + 1))


def _band(rules: Sequence[Compiled]) -> tuple[float, float]:
    """The open band of values where none of `rules` holds, if they are all numeric orderings."""
    below: list[float] = []
    above: list[float] = []
    for c in rules:
        condition = c.rule.condition
        assert isinstance(condition, SignalCondition)
        if not condition.op.ordering or not isinstance(condition.threshold, float):
            return math.nan, math.nan
        (below if condition.op in (Op.LT, Op.LE) else above).append(condition.threshold)
    return max(below, default=-math.inf), min(above, default=math.inf)


def _op(c: Compiled) -> Op:
    condition = c.rule.condition
    assert isinstance(condition, SignalCondition)
    return condition.op


def _threshold(c: Compiled) -> float:
    condition = c.rule.condition
    assert isinstance(condition, SignalCondition) and isinstance(condition.threshold, float)
    return condition.threshold


def _rising(c: Compiled) -> tuple[float, int]:
    """`>=` before `>` at one threshold: `>=` holds for every value `>` does."""
    return _threshold(c), 0 if _op(c) is Op.GE else 1


def _falling(c: Compiled) -> tuple[float, int]:
    """`<=` before `<` at one threshold: `<=` holds for every value `<` does."""
    return -_threshold(c), 0 if _op(c) is Op.LE else 1


def _rule_id(c: Compiled) -> int:
    return c.id


def _path_of(c: Compiled) -> str:
    condition = c.rule.condition
    assert isinstance(condition, SignalCondition)
    return condition.path


def order(pair: tuple[tuple[str, int, Any], Entry]) -> tuple[int, int]:
    return pair[0][1], pair[1].order


def alert_change(r: AlertOpened | AlertResolved) -> dict[str, Any]:
    """The live-stream data of an alert transition."""
    if isinstance(r, AlertOpened):
        return {
            "id": r.id,
            "state": "open",
            "rule_id": r.rule_id,
            "rule": r.rule_name,
            "severity": r.severity,
            "key": r.key,
            "value": r.value,
            "detail": r.detail,
            "ts": r.ts,
        }
    return {"id": r.id, "state": "resolved", "rule_id": r.rule_id, "reason": r.reason, "ts": r.ts}


def detail(c: Compiled, path: str, value: Any) -> str:
    condition = c.rule.condition
    assert isinstance(condition, SignalCondition)
    text = f"{path} = {value!r} {condition.op} {condition.threshold!r}"
    if condition.for_s:
        text += f" for {condition.for_s:g} s"
    if condition.guard is not None:
        g = condition.guard
        text += f" while {g.path} {g.op} {g.value!r}"
    return text


__all__ = ["Entry", "RuleSet", "alert_change", "detail", "order"]
