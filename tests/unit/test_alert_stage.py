"""The alert stage on random message streams: its paths and its undo agree.

`AlertStage` evaluates a message of one sample without a `while` guard in one pass in the
order sent (`_one_sample`, the hot path) and any other message in time order (`_in_order`).
The same stream is fed to three stages: one as sent (one sample each), one with every message
split into two samples of the same instant (forced down the general path: same meaning), and
one that sees only the batches that commit. Batches fail at random (never committed, retried
with a message dropped), so the first two must also undo what a failed batch did. All three
must publish the same transitions and pending-wait changes.
"""

import random
from typing import Any

import pytest

from autocloud.domain.alerts import AlertChanges, AlertRule, PendingChanges, parse_condition
from autocloud.domain.catalog import Catalog
from autocloud.domain.dtc import Severity
from autocloud.domain.protocol import Sample, Telemetry
from autocloud.domain.records import VehicleRef, WriteBatch
from autocloud.ports.link import Inbound
from autocloud.services.alert_stage import AlertStage
from autocloud.services.fanout import Change
from autocloud.services.ingest.stages import Batch, Item

CATALOG = Catalog.builtin(None)
COOLANT = "Vehicle.Powertrain.CombustionEngine.EngineCoolant.Temperature"
VOLTS = "Vehicle.LowVoltageBattery.CurrentVoltage"
MOVING = "Vehicle.IsMoving"
FL = "Vehicle.Chassis.Axle.Row1.Wheel.Left.Tire.Pressure"
RR = "Vehicle.Chassis.Axle.Row2.Wheel.Right.Tire.Pressure"
SPEED = "Vehicle.Speed"  # watched by no rule
LOAD = "Vehicle.OBD.EngineLoad"  # a guard that is a number
PARKED = {"path": MOVING, "op": "==", "value": False}
LIGHT = {"path": LOAD, "op": "<", "value": 20}
SPECS: list[dict[str, Any]] = [
    {"path": COOLANT, "op": ">", "threshold": 110, "for_s": 5, "hysteresis": 5},
    {"path": COOLANT, "op": ">=", "threshold": 125},
    {"path": COOLANT, "op": "<", "threshold": -1e6},
    {"path": COOLANT, "op": ">", "threshold": 118, "while": LIGHT},
    {"path": VOLTS, "op": "<", "threshold": 11.8, "hysteresis": 0.3, "while": PARKED},
    {"path": VOLTS, "op": "<", "threshold": 11.0, "for_s": 3, "while": PARKED},
    {"path": VOLTS, "op": ">=", "threshold": 12.5, "hysteresis": 0.2},
    {"path": "Vehicle.Chassis.Axle.*.Wheel.*.Tire.Pressure", "op": "<", "threshold": 180},
    {
        "path": "Vehicle.Chassis.Axle.*.Wheel.*.Tire.Pressure",
        "op": "<",
        "threshold": 170,
        "for_s": 2,
        "while": PARKED,
    },  # a guarded `*` rule: remembered values re-checked
    {"path": RR, "op": ">", "threshold": 150},  # overlaps `< 180`: no quiet band on RR
    {"path": FL, "op": "!=", "threshold": 200},
    {"path": MOVING, "op": "==", "threshold": True, "for_s": 1},  # watches a guard
]
VEHICLES = [VehicleRef(1, "vw"), VehicleRef(2, "vw"), VehicleRef(3, "vw")]
# The rule sets the stages run: guards on two paths, on one (a sample is tested for it with
# `in`), on none.
GUARD_PATHS: dict[str, list[dict[str, Any]]] = {
    "two guard paths": SPECS,
    "one guard path": [s for s in SPECS if s.get("while") is not LIGHT],
    "no guard": [s for s in SPECS if "while" not in s],
}


class Store:
    """The rules given (those above); vehicle 1's twin says it is parked (seeds the guard)."""

    def __init__(self, specs: list[dict[str, Any]]) -> None:
        self.rules = [
            AlertRule(
                n, "vw", f"r{n}", Severity.WARNING, parse_condition({"signal": s}, None), 0, "t"
            )
            for n, s in enumerate(specs, start=1)
        ]

    def all_rules(self) -> list[AlertRule]:
        return self.rules

    def pending_waits(self) -> list[Any]:
        return []

    def open_alert_keys(self) -> list[tuple[int, int, str]]:
        return []

    def twin_values(self, vehicle_ids: Any, paths: Any) -> dict[int, dict[str, tuple[int, Any]]]:
        return {
            v: ({MOVING: (0, False)} if v == 1 and MOVING in paths else {}) for v in vehicle_ids
        }


class Hub:
    """Publishes nothing: records without a store id (none here) are not published."""

    def publish(self, changes: list[Change]) -> None:
        assert changes == []


def stage(specs: list[dict[str, Any]] = SPECS) -> AlertStage:
    s = AlertStage(Store(specs), Hub())  # type: ignore[arg-type]
    s.restore()
    return s


def value(rng: random.Random, path: str) -> Any:
    if path == MOVING:
        return rng.random() < 0.5
    if rng.random() < 0.03:
        return "n/a"  # another type than the rules compare
    centre, spread = {
        COOLANT: (112.0, 20.0),
        VOLTS: (11.6, 1.2),
        FL: (190.0, 30.0),
        RR: (190.0, 30.0),
        SPEED: (50.0, 50.0),
        LOAD: (30.0, 30.0),
    }[path]
    return round(centre + rng.uniform(-spread, spread), 1)


def messages(
    rng: random.Random, n: int, clock: list[int]
) -> list[tuple[VehicleRef, int, dict[str, Any]]]:
    """`n` messages: mostly forward in time, now and then a late one, a guard in some."""
    out = []
    for _ in range(n):
        clock[0] += rng.choice((0, 500, 1000, 2000))
        ts = clock[0] - (rng.choice((1000, 4000)) if rng.random() < 0.1 else 0)
        paths = rng.sample([COOLANT, VOLTS, FL, RR, SPEED], rng.randint(1, 5))
        for guard in (MOVING, LOAD):
            if rng.random() < 0.15:
                paths.insert(rng.randrange(len(paths) + 1), guard)
        out.append((rng.choice(VEHICLES), ts, {p: value(rng, p) for p in paths}))
    return out


def batch(msgs: list[tuple[VehicleRef, int, dict[str, Any]]], split: bool) -> Batch:
    items = []
    for seq, (vehicle, ts, signals) in enumerate(msgs, start=1):
        if split:  # the same values as two samples of one instant
            cut = len(signals) // 2
            first, second = dict(list(signals.items())[:cut]), dict(list(signals.items())[cut:])
            message = Telemetry(1, "s", seq, samples=[Sample(ts, first), Sample(ts, second)])
        else:
            message = Telemetry(1, "s", seq, ts=ts, signals=signals)
        points = [(p, ts, v) for p, v in signals.items()]
        inbound = Inbound("vehicles/x/telemetry", b"", 0)
        items.append(Item(inbound, f"VIN{vehicle.id}", None, message, vehicle, points))
    return Batch(items, 0, WriteBatch())


def outcome(b: Batch) -> list[Any]:
    """What a batch hands to the transaction, in order."""
    out: list[Any] = []
    for record in b.out.extra:
        if isinstance(record, AlertChanges):
            out.append(("alerts", record.items))
        elif isinstance(record, PendingChanges):
            out.append(("pending", record.started, sorted(record.ended)))
    return out


@pytest.mark.parametrize("guards", GUARD_PATHS)
@pytest.mark.parametrize("seed", range(12))
def test_hot_path_general_path_and_a_clean_run_agree(
    seed: int, guards: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    rng = random.Random(seed)
    specs = GUARD_PATHS[guards]
    fast, slow, clean = stage(specs), stage(specs), stage(specs)
    hot = {"calls": 0}
    one_sample = AlertStage._one_sample

    def counted(self: AlertStage, item: Item, rules: Any, vid: int) -> None:
        hot["calls"] += self is fast
        one_sample(self, item, rules, vid)

    monkeypatch.setattr(AlertStage, "_one_sample", counted)
    clock, seen = [1_000_000], {"alerts": 0, "pending": 0}
    for _ in range(60):
        msgs = messages(rng, rng.randint(1, 8), clock)
        if rng.random() < 0.2:  # this batch's commit fails; its retry lacks one message
            fast(batch(msgs, split=False))
            slow(batch(msgs, split=True))
            if len(msgs) > 1:
                del msgs[rng.randrange(len(msgs))]
        batches = [
            (fast, batch(msgs, False)),
            (slow, batch(msgs, True)),
            (clean, batch(msgs, False)),
        ]
        for s, b in batches:
            s(b)
            s.committed(b)
        got = [outcome(b) for _, b in batches]
        assert got[0] == got[1] == got[2]
        for kind, *_ in got[0]:
            seen[kind] += 1
    assert hot["calls"] > 0 and seen["alerts"] > 0 and seen["pending"] > 0


def test_a_wait_opens_when_vehicle_time_reaches_for_s_without_a_new_value() -> None:
    s = stage()
    car = VEHICLES[1]
    for ts, signals in ((0, {COOLANT: 115.0}), (4_999, {SPEED: 1.0}), (5_000, {SPEED: 2.0})):
        b = batch([(car, 1_000_000 + ts, signals)], split=False)
        s(b)
        s.committed(b)
        opened = [r for r in b.out.extra if isinstance(r, AlertChanges)]
        assert bool(opened) == (ts == 5_000)  # for_s = 5: opens at exactly 5 s, not before


def run_one(s: AlertStage, ts: int, signals: dict[str, Any]) -> list[Any]:
    """One message of vehicle 2, committed; what its batch hands to the transaction."""
    b = batch([(VEHICLES[1], 1_000_000 + ts, signals)], split=False)
    s(b)
    s.committed(b)
    return outcome(b)


def test_a_rule_changed_elsewhere_loses_its_trackers_an_unchanged_one_keeps_them() -> None:
    s = stage()
    [(kind, started, _)] = run_one(s, 0, {COOLANT: 115.0})  # rule 1's wait starts
    assert kind == "pending" and [(w.rule_id, w.since) for w in started] == [(1, 1_000_000)]
    s.reload()  # the same rules: the wait goes on (nothing to write)
    assert run_one(s, 1_000, {COOLANT: 116.0}) == []
    # Another process changes rule 1 (its store dropped the wait and resolved its alerts):
    # here the wait starts over with the next value that holds.
    store = s._store
    assert isinstance(store, Store)
    changed = parse_condition({"signal": {**SPECS[0], "threshold": 111}}, None)
    store.rules[0] = AlertRule(1, "vw", "r1", Severity.WARNING, changed, 0, "t")
    s.reload()
    [(kind, started, ended)] = run_one(s, 2_000, {COOLANT: 117.0})
    assert [(w.rule_id, w.since) for w in started] == [(1, 1_002_000)] and ended == []
