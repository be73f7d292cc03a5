"""Storage contract of pending alert waits and owner-filtered alert lists (SQLite, PostgreSQL)."""

from autocloud.adapters.sql.store import SqlStore
from autocloud.domain.alerts import (
    AlertChanges,
    AlertOpened,
    Op,
    PendingChanges,
    PendingWait,
    SignalCondition,
)
from autocloud.domain.dtc import Severity
from autocloud.domain.records import WriteBatch
from tests.contract.helpers import SPEED, T0, add_vehicle

HOT = SignalCondition(SPEED, Op.GT, 100.0, 5.0, 30.0)


def _commit(store: SqlStore, *records: object) -> None:
    store.telemetry.commit(WriteBatch(received_ms=T0, extra=list(records)))


def test_waits_are_upserted_ended_and_go_with_their_rule_or_vehicle(brands: SqlStore) -> None:
    v = add_vehicle(brands, 1)
    w = add_vehicle(brands, 2)
    rule = brands.alerts.add_rule("vw", "hot", Severity.WARNING, HOT, T0, "ops")
    other = brands.alerts.add_rule("vw", "hotter", Severity.WARNING, HOT, T0, "ops")
    a = PendingWait(rule.id, v.id, SPEED, T0, T0, 101.5)
    b = PendingWait(rule.id, w.id, SPEED, T0 + 1, T0 + 1, (1, 2))  # an array value
    c = PendingWait(other.id, v.id, SPEED, T0 + 2, T0 + 2, True)
    _commit(brands, PendingChanges([a, b, c], []))
    assert sorted(brands.alerts.pending_waits(), key=lambda x: x.since) == [a, b, c]

    restarted = PendingWait(rule.id, v.id, SPEED, T0 + 5, T0 + 5, 120.0)  # same key, anew
    _commit(brands, PendingChanges([restarted], [(rule.id, w.id, SPEED)]))
    assert sorted(brands.alerts.pending_waits(), key=lambda x: x.since) == [c, restarted]

    # A wait of a rule (or vehicle) deleted while its batch was in flight is skipped, not a
    # failed commit; deleting a rule or a vehicle takes its waits with it.
    brands.alerts.delete_rule(other.id, T0 + 6)
    late = PendingWait(other.id, w.id, SPEED, T0 + 7, T0 + 7, 130.0)
    ghost = PendingWait(rule.id, 999_999, SPEED, T0 + 7, T0 + 7, 130.0)
    _commit(brands, PendingChanges([late, ghost], []))
    assert brands.alerts.pending_waits() == [restarted]
    brands.registry.delete_vehicle(v.vin)
    assert brands.alerts.pending_waits() == []


def test_replacing_a_rule_drops_its_waits(brands: SqlStore) -> None:
    v = add_vehicle(brands, 1)
    rule = brands.alerts.add_rule("vw", "hot", Severity.WARNING, HOT, T0, "ops")
    _commit(brands, PendingChanges([PendingWait(rule.id, v.id, SPEED, T0, T0, 101.0)], []))
    brands.alerts.replace_rule(rule.id, "hot", Severity.CRITICAL, HOT, T0 + 1)
    assert brands.alerts.pending_waits() == []


def test_alert_list_filtered_by_vins(brands: SqlStore) -> None:
    v = add_vehicle(brands, 1)
    w = add_vehicle(brands, 2)
    rule = brands.alerts.add_rule("vw", "hot", Severity.WARNING, HOT, T0, "ops")
    opened = [
        AlertOpened(rule.id, "hot", "vw", x.id, x.vin, "warning", SPEED, 120.0, "d", T0, T0)
        for x in (v, w)
    ]
    _commit(brands, AlertChanges(list(opened)))

    def listed(vins: frozenset[str] | None) -> list[str]:
        found = brands.alerts.alerts(
            "vw", state=None, vehicle_id=None, rule_id=None, after=0, limit=10, vins=vins
        )
        return [a.vin for a in found]

    assert sorted(listed(None)) == sorted([v.vin, w.vin])
    assert listed(frozenset({w.vin})) == [w.vin]
    assert listed(frozenset()) == []
