"""Merging dtc.raised/cleared events and the DTC list by vehicle time."""

from autocloud.domain.dtc_active import DtcUpdate, VehicleDtcs


def _update() -> DtcUpdate:
    return DtcUpdate(1, "WVWZZZ1JZXW000001", "vw", 0)


def test_event_raises_and_clears_with_history() -> None:
    v, u = VehicleDtcs(), _update()
    v.raised("P0301", 100, {"Vehicle.Speed": 50}, u)
    v.raised("P0301", 150, None, u)  # repeated: not a new transition, last seen moves
    assert list(v.active) == ["P0301"]
    assert v.active["P0301"].freeze_frame == {"Vehicle.Speed": 50}
    assert v.active["P0301"].last_seen_ms == 150
    v.cleared("P0301", 200, u)
    assert v.active == {}
    assert [(t.code, t.raised, t.ts) for t in u.transitions] == [
        ("P0301", True, 100),
        ("P0301", False, 200),
    ]
    assert u.removed == ["P0301"] and u.upserts == []


def test_clear_of_an_unknown_code_changes_nothing() -> None:
    v, u = VehicleDtcs(), _update()
    v.cleared("P0420", 100, u)
    assert not u.changed and u.removed == []


def test_list_raises_and_clears_and_event_adds_the_freeze_frame() -> None:
    v, u = VehicleDtcs(), _update()
    v.listed(["P0420", "P0171"], 100, u)
    assert set(v.active) == {"P0420", "P0171"}
    assert v.active["P0420"].source == "list" and v.active["P0420"].freeze_frame is None
    v.raised("P0420", 100, {"Vehicle.Speed": 3}, u)  # the event of the same fault
    assert v.active["P0420"].freeze_frame == {"Vehicle.Speed": 3}
    v.listed(["P0420"], 200, u)
    assert list(v.active) == ["P0420"]
    assert [(t.code, t.raised) for t in u.transitions] == [
        ("P0171", True),
        ("P0420", True),
        ("P0171", False),
    ]


def test_late_reports_do_not_undo_newer_ones() -> None:
    v, u = VehicleDtcs(), _update()
    v.raised("P0301", 100, None, u)
    v.cleared("P0301", 300, u)
    v.listed(["P0301"], 200, u)  # a telemetry message held back: older than the clear
    assert v.active == {}
    v.raised("P0301", 250, None, u)  # a late raise from before the clear
    assert v.active == {}
    v.listed(["P0420"], 400, u)
    v.listed([], 350, u)  # older than the newest list applied
    assert list(v.active) == ["P0420"]
    v.raised("P0217", 500, None, u)
    v.listed([], 450, u)  # newer than the last list, but older than P0217's raise
    assert "P0217" in v.active and "P0420" not in v.active


def test_copy_is_independent() -> None:
    v, u = VehicleDtcs(), _update()
    v.raised("P0301", 100, None, u)
    w = v.copy()
    w.cleared("P0301", 200, u)
    assert "P0301" in v.active and "P0301" not in w.active


def test_clear_then_raise_in_one_batch_is_an_upsert() -> None:
    v, u = VehicleDtcs(), _update()
    v.raised("P0301", 100, None, u)
    v.cleared("P0301", 200, u)
    v.raised("P0301", 300, None, u)
    assert u.removed == [] and [d.code for d in u.upserts] == ["P0301"]
    assert v.active["P0301"].since_ms == 300
