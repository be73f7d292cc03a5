"""Alert rules indexed per brand for the ingest hot path, and how transitions are shown.

A :class:`RuleSet` holds one brand's compiled rules: signal rules reachable by path (a `*`
pattern is matched the first time a path is seen, then cached with the answer, including
"no rule": the next lookup is one dict hit), `while` guards by their path, DTC rules, and
event rules by event type and by clearing type.
"""

import math
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

    rules: tuple[Compiled, ...]  # rules watching the path
    guarded: tuple[Compiled, ...]  # rules whose `while` guard is the path
    keep: bool  # remember its last value (a guarded rule re-checks it when its guard turns)
    order: int  # guards first at equal time
    # No rule can hold while floor < value < ceiling (all rules are numeric < <= > >=):
    # one comparison then answers for all of them. Otherwise floor = ceiling = nan (never).
    floor: float = math.nan
    ceiling: float = math.nan


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
        self.seed_paths = set(self.guards) | {
            p for c in self.signal if c.guard_path and "*" not in (p := _path_of(c))
        }
        self.paths: dict[str, Entry | None] = {}

    def entry(self, path: str) -> Entry | None:
        """The (cached) meaning of `path`; None when no rule cares."""
        rules = tuple(c for c in self.signal if c.matches(path))
        guarded = tuple(self.guards.get(path, ()))
        keep = any(c.guard_path is not None for c in rules)
        floor, ceiling = _band(rules)
        found = (
            Entry(rules, guarded, keep, 0 if guarded else 1, floor, ceiling)
            if rules or guarded
            else None
        )
        self.paths[path] = found
        return found


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
