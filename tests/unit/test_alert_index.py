"""The per-path index of alert rules: its quiet band and `holding` agree with each rule's test.

`Entry.holding` finds the rules a value meets by bisecting their thresholds, and the stage
skips a value inside `Entry.quiet`'s band without testing any rule; both must say exactly
what testing every rule would, at the thresholds themselves, for overlapping rules, for
`==`/`!=` rules (no band), and for values of other types.
"""

import math
import random
from typing import Any

import pytest

from autocloud.domain.alert_eval import Compiled
from autocloud.domain.alerts import AlertRule, parse_condition
from autocloud.domain.dtc import Severity
from autocloud.services.alert_index import RuleSet

PATH = "Vehicle.Speed"
OPS = ("<", "<=", ">", ">=")


def rules(specs: list[tuple[str, Any]]) -> RuleSet:
    return RuleSet(
        [
            Compiled.of(
                AlertRule(
                    n,
                    "vw",
                    f"r{n}",
                    Severity.INFO,
                    parse_condition({"signal": {"path": PATH, "op": op, "threshold": t}}, None),
                    0,
                    "t",
                )
            )
            for n, (op, t) in enumerate(specs, start=1)
        ]
    )


def each_test(rule_set: RuleSet, value: Any) -> list[int]:
    held = []
    for c in rule_set.signal:
        try:
            if c.test(value):
                held.append(c.id)
        except TypeError:
            pass
    return held


@pytest.mark.parametrize("seed", range(40))
def test_holding_and_the_quiet_band_are_each_rules_test(seed: int) -> None:
    rng = random.Random(seed)
    edges = [10.0, 20.0, 30.0]
    specs: list[tuple[str, Any]] = [
        (rng.choice(OPS), rng.choice(edges)) for _ in range(rng.randint(1, 6))
    ]
    if rng.random() < 0.2:
        specs.append((rng.choice(("==", "!=")), rng.choice(edges)))  # no band at all
    rule_set = rules(specs)
    entry = rule_set.entry(PATH)
    assert entry is not None
    values: list[Any] = [v + d for v in edges for d in (-0.5, 0.0, 0.5)]
    values += [0, 15, 25, 35, True, False, math.inf, -math.inf, math.nan, "fast", (1, 2), None]
    for value in values:
        expected = each_test(rule_set, value)
        assert [c.id for c in entry.holding(value)] == expected, (specs, value)
        if entry.quiet(value):
            assert expected == [], (specs, value)
