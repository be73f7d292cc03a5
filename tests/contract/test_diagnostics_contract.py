"""Storage contract of DTCs, alert rules and alerts, against SQLite and PostgreSQL."""

import pytest

from autocloud.adapters.sql.store import SqlStore
from autocloud.domain.alerts import (
    AlertChanges,
    AlertOpened,
    AlertResolved,
    AlertState,
    EventCondition,
    Op,
    SignalCondition,
)
from autocloud.domain.dtc import Severity
from autocloud.domain.dtc_active import ActiveDtc, DtcTransition, DtcUpdate
from autocloud.domain.errors import NotFound
from autocloud.domain.records import WriteBatch
from tests.contract.helpers import SPEED, T0, Point, add_vehicle, frames_of

HOT = SignalCondition("Vehicle.Speed", Op.GT, 100.0, 5.0, 30.0)


def _dtc_batch(vid: int, vin: str, **kw: object) -> WriteBatch:
    update = DtcUpdate(vid, vin, "vw", T0, **kw)  # type: ignore[arg-type]
    return WriteBatch(received_ms=T0, extra=[update])


def test_active_dtcs_and_history(brands: SqlStore) -> None:
    v = add_vehicle(brands, 1)
    w = add_vehicle(brands, 2, brand="seat", model="Leon")
    p0301 = ActiveDtc("P0301", T0, T0, {"Vehicle.Speed": 50.0, "Vehicle.IsMoving": True})
    p0420 = ActiveDtc("P0420", T0 + 1, T0 + 1, None, "list")
    raised = [
        DtcTransition("P0301", True, T0, "event", p0301.freeze_frame),
        DtcTransition("P0420", True, T0 + 1, "list"),
    ]
    brands.telemetry.commit(_dtc_batch(v.id, v.vin, upserts=[p0301, p0420], transitions=raised))
    brands.telemetry.commit(_dtc_batch(w.id, w.vin, upserts=[ActiveDtc("B0001", T0 + 2, T0 + 2)]))
    assert brands.dtcs.active_dtcs([v.id, w.id, 999]) == {
        v.id: [p0301, p0420],
        w.id: [ActiveDtc("B0001", T0 + 2, T0 + 2)],
        999: [],
    }
    seen = ActiveDtc("P0420", T0 + 1, T0 + 9, None, "list")
    cleared = [DtcTransition("P0301", False, T0 + 5, "event")]
    brands.telemetry.commit(
        _dtc_batch(v.id, v.vin, upserts=[seen], removed=["P0301"], transitions=cleared)
    )
    assert brands.dtcs.active_dtcs([v.id]) == {v.id: [seen]}
    history = brands.dtcs.dtc_history(v.id, 10)
    assert [(t.code, t.raised, t.ts) for t in history] == [
        ("P0301", False, T0 + 5),
        ("P0420", True, T0 + 1),
        ("P0301", True, T0),
    ]
    assert history[2].freeze_frame == p0301.freeze_frame
    assert len(brands.dtcs.dtc_history(v.id, 1)) == 1
    fleet = brands.dtcs.fleet_dtcs(None)
    assert [(f.vin, f.brand, f.model, f.code) for f in fleet] == sorted(
        [(v.vin, "vw", "ID.4", "P0420"), (w.vin, "seat", "Leon", "B0001")]
    )
    assert [f.code for f in brands.dtcs.fleet_dtcs("seat")] == ["B0001"]


def test_deleting_a_vehicle_deletes_its_dtcs_and_alerts(brands: SqlStore) -> None:
    v = add_vehicle(brands, 1)
    rule = brands.alerts.add_rule("vw", "r", Severity.INFO, HOT, T0, "t")
    brands.telemetry.commit(_dtc_batch(v.id, v.vin, upserts=[ActiveDtc("P0301", T0, T0)]))
    opened = AlertOpened(rule.id, "r", "vw", v.id, v.vin, "info", SPEED, 120.0, "d", T0, T0)
    brands.telemetry.commit(WriteBatch(received_ms=T0, extra=[AlertChanges([opened])]))
    brands.registry.delete_vehicle(v.vin)
    assert brands.dtcs.active_dtcs([v.id]) == {v.id: []}
    assert (
        brands.alerts.alerts(None, state=None, vehicle_id=None, rule_id=None, after=0, limit=9)
        == []
    )


def test_rules_crud_and_scope(brands: SqlStore) -> None:
    dtc = EventCondition("dtc.raised", Severity.CRITICAL, ("P03",))
    a = brands.alerts.add_rule("vw", "hot", Severity.WARNING, HOT, T0, "ops")
    b = brands.alerts.add_rule("seat", "dtc", Severity.CRITICAL, dtc, T0 + 1, "ops")
    assert brands.alerts.rule(a.id) == a
    assert brands.alerts.rules(None, after=0, limit=10) == [a, b]
    assert brands.alerts.rules("seat", after=0, limit=10) == [b]
    assert brands.alerts.rules(None, after=a.id, limit=10) == [b]
    assert brands.alerts.all_rules() == [a, b]
    guarded = SignalCondition("Vehicle.Speed", Op.EQ, 0.0)
    changed = brands.alerts.replace_rule(a.id, "still", Severity.INFO, guarded, T0 + 2)
    assert (changed.name, changed.severity, changed.condition) == ("still", Severity.INFO, guarded)
    brands.alerts.delete_rule(a.id, T0 + 3)
    assert brands.alerts.rule(a.id) is None
    with pytest.raises(NotFound):
        brands.alerts.delete_rule(a.id, T0 + 4)
    with pytest.raises(NotFound):
        brands.alerts.replace_rule(a.id, "x", Severity.INFO, HOT, T0)


def test_alert_open_is_deduplicated_resolve_and_acknowledge(brands: SqlStore) -> None:
    v = add_vehicle(brands, 1)
    rule = brands.alerts.add_rule("vw", "hot", Severity.WARNING, HOT, T0, "ops")
    first = AlertOpened(rule.id, "hot", "vw", v.id, v.vin, "warning", SPEED, 120.5, "d", T0, T0 + 9)
    again = AlertOpened(
        rule.id, "hot", "vw", v.id, v.vin, "warning", SPEED, 130.0, "d", T0 + 1, T0 + 9
    )
    brands.telemetry.commit(WriteBatch(received_ms=T0, extra=[AlertChanges([first, again])]))
    assert first.id is not None and again.id == first.id  # one open alert per rule and vehicle
    [alert] = brands.alerts.alerts(
        None, state=AlertState.OPEN, vehicle_id=v.id, rule_id=None, after=0, limit=10
    )
    assert (alert.id, alert.vin, alert.value, alert.opened_ts, alert.opened_ms) == (
        first.id,
        v.vin,
        120.5,
        T0,
        T0 + 9,
    )
    assert brands.alerts.open_alert_keys() == [(rule.id, v.id, SPEED)]

    acked = brands.alerts.acknowledge(alert.id, "alice", T0 + 20, resolve=False)
    assert acked is not None and (acked.state, acked.acked_by, acked.acked_ms) == (
        AlertState.ACKNOWLEDGED,
        "alice",
        T0 + 20,
    )
    assert brands.alerts.acknowledge(alert.id, "bob", T0 + 21, resolve=False) is None

    gone = AlertResolved(rule.id, v.id, v.vin, "vw", "cleared", T0 + 30, T0 + 31)
    reopened = AlertOpened(
        rule.id, "hot", "vw", v.id, v.vin, "warning", SPEED, 140.0, "d", T0 + 40, T0 + 41
    )
    brands.telemetry.commit(WriteBatch(received_ms=T0, extra=[AlertChanges([gone, reopened])]))
    assert gone.id == alert.id and reopened.id not in (None, alert.id)
    done = brands.alerts.alert(alert.id)
    assert done is not None and (done.state, done.resolved_ts, done.resolved_reason) == (
        AlertState.RESOLVED,
        T0 + 30,
        "cleared",
    )
    nothing = AlertResolved(999, v.id, v.vin, "vw", "cleared", T0, T0)
    brands.telemetry.commit(WriteBatch(received_ms=T0, extra=[AlertChanges([nothing])]))
    assert nothing.id is None

    listed = brands.alerts.alerts(
        "vw", state=None, vehicle_id=None, rule_id=rule.id, after=0, limit=1
    )
    assert [a.id for a in listed] == [reopened.id]
    older = brands.alerts.alerts(
        "vw", state=None, vehicle_id=None, rule_id=None, after=listed[0].id, limit=5
    )
    assert [a.id for a in older] == [alert.id]
    assert (
        brands.alerts.alerts("seat", state=None, vehicle_id=None, rule_id=None, after=0, limit=5)
        == []
    )

    one_shot = brands.alerts.acknowledge(reopened.id, "carol", T0 + 50, resolve=True)
    assert one_shot is not None and (one_shot.state, one_shot.resolved_reason) == (
        AlertState.RESOLVED,
        "acknowledged",
    )
    brands.alerts.delete_rule(rule.id, T0 + 60)
    late = AlertOpened(rule.id, "hot", "vw", v.id, v.vin, "warning", SPEED, 1.0, "d", T0, T0)
    brands.telemetry.commit(WriteBatch(received_ms=T0, extra=[AlertChanges([late])]))
    assert late.id is None  # a rule deleted meanwhile opens nothing


def test_deleting_or_changing_a_rule_resolves_its_open_alerts(brands: SqlStore) -> None:
    v = add_vehicle(brands, 1)
    rule = brands.alerts.add_rule("vw", "hot", Severity.WARNING, HOT, T0, "ops")
    opened = AlertOpened(rule.id, "hot", "vw", v.id, v.vin, "warning", SPEED, 1.0, "d", T0, T0)
    brands.telemetry.commit(WriteBatch(received_ms=T0, extra=[AlertChanges([opened])]))
    brands.alerts.replace_rule(rule.id, "hot", Severity.WARNING, HOT, T0 + 5)
    assert opened.id is not None
    changed = brands.alerts.alert(opened.id)
    assert changed is not None and (changed.state, changed.resolved_reason) == (
        AlertState.RESOLVED,
        "rule changed",
    )
    assert brands.alerts.open_alert_keys() == []


def test_twin_values_seed_guards(brands: SqlStore) -> None:
    v = add_vehicle(brands, 1)
    ids = brands.telemetry.signal_ids([SPEED, "Vehicle.IsMoving"])
    twin = frames_of(
        [Point(v.id, ids[SPEED], T0, 0.0), Point(v.id, ids["Vehicle.IsMoving"], T0 + 1, False)]
    )
    brands.telemetry.commit(WriteBatch(received_ms=T0, twin=twin))
    found = brands.alerts.twin_values([v.id, 999], [SPEED, "Vehicle.IsMoving", "Vehicle.Nope"])
    assert found == {v.id: {SPEED: (T0, 0.0), "Vehicle.IsMoving": (T0 + 1, False)}, 999: {}}
