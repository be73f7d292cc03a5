"""Contract of TelemetryWriter, TelemetryReader and DeadLetterStore, run on every adapter."""

import json
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest
from sqlalchemy import create_engine, event, select
from sqlalchemy.exc import IntegrityError

from autocloud.adapters.sql.schema import (
    dead_letters,
    events,
    history,
    presence,
    seq_windows,
    twin,
)
from autocloud.adapters.sql.store import SqlStore
from autocloud.bootstrap import open_store
from autocloud.domain.errors import StoreUnavailable
from autocloud.domain.records import (
    Bucket,
    DeadLetter,
    DesiredSignal,
    EventRecord,
    HistoryRow,
    PresenceChange,
    Value,
    Vehicle,
    VehicleRef,
    WriteBatch,
)
from autocloud.domain.replay import SeqWindow
from autocloud.ports.stores import SignalCondition
from tests.contract.helpers import (
    ACCEL,
    CHARGE_LIMIT,
    FUEL_TYPES,
    IS_CHARGING,
    IS_MOVING,
    LIGHTS,
    MINUTE,
    ODOMETER,
    SOC,
    SPEED,
    START_STOP,
    T0,
    add_vehicle,
    count,
    dead_letter,
    frames_of,
    make_vin,
    point,
    record,
    reported,
    set_twin,
)

# --- writer: refs, signal ids, replay windows --------------------------------------------


def test_refs_of_known_and_unknown_vins(brands: SqlStore) -> None:
    golf = add_vehicle(brands, 1)
    born = add_vehicle(brands, 2, brand="seat", model="Born")
    refs = brands.telemetry.refs([golf.vin, born.vin, make_vin(3), golf.vin])
    assert refs == {golf.vin: VehicleRef(golf.id, "vw"), born.vin: VehicleRef(born.id, "seat")}
    assert brands.telemetry.refs([make_vin(3)]) == {}
    assert brands.telemetry.refs([]) == {}


def test_signal_ids_are_stable_across_calls_and_store_instances(
    store: SqlStore, db_url: str
) -> None:
    first = store.telemetry.signal_ids([SPEED, SOC])
    assert set(first) == {SPEED, SOC}
    assert first[SPEED] != first[SOC]
    assert store.telemetry.signal_ids([SOC, SPEED, SOC]) == first
    assert store.telemetry.signal_ids([]) == {}

    second = open_store(db_url)
    try:
        assert second.telemetry.signal_ids([SOC, SPEED]) == first
        later = second.telemetry.signal_ids([LIGHTS])  # new path, made by the other instance
        assert later[LIGHTS] not in first.values()
        assert store.telemetry.signal_ids([LIGHTS, SPEED]) == {**later, SPEED: first[SPEED]}
    finally:
        second.close()


def test_windows_round_trip_through_commit(brands: SqlStore) -> None:
    tel = brands.telemetry
    vehicle = add_vehicle(brands, 1)
    window = SeqWindow()
    for seq in (5, 3, 1000, 998):
        window.offer(seq)
    key, other = (vehicle.id, "boot-2026-01-01"), (vehicle.id, "boot-other")
    assert tel.windows([key, other]) == {}
    assert tel.windows([]) == {}

    tel.commit(WriteBatch(received_ms=T0, windows={key: window}))
    stored = tel.windows([key, other])
    assert stored == {key: window}
    assert stored[key].offer(3).value == "duplicate"
    assert stored[key].offer(4).value == "new"

    window.offer(2000)  # the window moves on and is stored again
    tel.commit(WriteBatch(received_ms=T0 + 1, windows={key: window}))
    assert tel.windows([key]) == {key: SeqWindow(window.top, window.bits)}


# --- writer: commit -----------------------------------------------------------------------


def _full_batch(store: SqlStore, vehicle: Vehicle) -> WriteBatch:
    window = SeqWindow()
    window.offer(41)
    window.offer(42)
    return WriteBatch(
        received_ms=T0 + 900,
        history=frames_of(
            [
                point(store, vehicle, SPEED, T0, 48.5),
                point(store, vehicle, SPEED, T0 + 500, 50.0),
                point(store, vehicle, LIGHTS, T0, "AUTO"),
            ]
        ),
        twin=frames_of(
            [
                point(store, vehicle, SPEED, T0 + 500, 50.0),
                point(store, vehicle, LIGHTS, T0, "AUTO"),
            ]
        ),
        events=[EventRecord(vehicle.id, T0 + 200, "harsh_braking", {"decel": 6.1}, T0 + 900)],
        presence=[PresenceChange(vehicle.id, True, T0 - 60_000, "boot-1")],
        windows={(vehicle.id, "boot-1"): window},
        dead_letters=[
            dead_letter(T0 + 900, "invalid_value", vin=vehicle.vin, brand="vw", topic="t/1")
        ],
    )


def test_commit_writes_every_part_of_a_batch(brands: SqlStore) -> None:
    tel = brands.telemetry
    vehicle = add_vehicle(brands, 1)
    batch = _full_batch(brands, vehicle)
    tel.commit(batch)

    assert tel.history(vehicle.id, [SPEED, LIGHTS], T0, T0 + 1000, after=None, limit=10) == [
        HistoryRow(LIGHTS, T0, "AUTO"),
        HistoryRow(SPEED, T0, 48.5),
        HistoryRow(SPEED, T0 + 500, 50.0),
    ]
    state = tel.twin(vehicle)
    assert (state.online, state.online_since_ms, state.sid) == (True, T0 - 60_000, "boot-1")
    assert {(s.path, s.value, s.ts, s.received_ms) for s in state.reported} == {
        (SPEED, 50.0, T0 + 500, T0 + 900),
        (LIGHTS, "AUTO", T0, T0 + 900),
    }
    assert tel.windows([(vehicle.id, "boot-1")]) == batch.windows
    [stored] = tel.dead_letters(None, reason=None, vin=None, after=0, limit=10)
    assert stored.id is not None
    assert stored == replace(batch.dead_letters[0], id=stored.id)
    with brands.engine.connect() as conn:  # no port reads events back
        [row] = conn.execute(select(events.c.vehicle_id, events.c.ts, events.c.type, events.c.data))
    assert (row.vehicle_id, row.ts, row.type) == (vehicle.id, T0 + 200, "harsh_braking")
    assert json.loads(row.data) == {"decel": 6.1}


def test_a_commit_not_asked_to_be_durable_is_visible_at_once_and_synced_later(
    brands: SqlStore,
) -> None:
    """Group sync: the batch reads back before `sync`; `sync` then makes it durable (SQLite
    defers the fsync to it; PostgreSQL commits durably anyway and its sync has nothing to do)."""
    tel = brands.telemetry
    vehicle = add_vehicle(brands, 1)
    batch = _full_batch(brands, vehicle)
    tel.commit(batch, durable=False)
    assert {s.path for s in tel.twin(vehicle).reported} == {SPEED, LIGHTS}
    assert tel.windows([(vehicle.id, "boot-1")]) == batch.windows
    assert tel.defers_sync is (brands.dialect.name == "sqlite")
    tel.sync()
    tel.sync()  # nothing new: still fine
    assert count(brands, history) == 2


TABLES = (history, twin, presence, events, seq_windows, dead_letters)


def test_failed_commit_writes_nothing(brands: SqlStore) -> None:
    """A batch that fails on its last statement leaves no part of itself behind.

    A NOT NULL violation is a programming error, not an outage: it surfaces as SQLAlchemy's
    IntegrityError (never StoreUnavailable, which would make ingest retry it forever).
    """
    vehicle = add_vehicle(brands, 1)
    batch = _full_batch(brands, vehicle)
    batch.dead_letters.append(dead_letter(T0, "invalid_value", topic=None))
    with pytest.raises(IntegrityError):
        brands.telemetry.commit(batch)
    assert {t.name: count(brands, t) for t in TABLES} == {t.name: 0 for t in TABLES}


@pytest.fixture
def dead_letter_insert_fails(store: SqlStore) -> Iterator[None]:
    """The connection dies when the dead letters (the last part of a batch) are written."""
    dbapi = store.engine.dialect.loaded_dbapi

    def fail(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if statement.lstrip().upper().startswith("INSERT INTO DEAD_LETTERS"):
            raise dbapi.OperationalError("server closed the connection unexpectedly")

    event.listen(store.engine, "before_cursor_execute", fail)
    yield
    event.remove(store.engine, "before_cursor_execute", fail)


def test_connection_lost_mid_commit_is_store_unavailable_and_atomic(
    brands: SqlStore, dead_letter_insert_fails: None
) -> None:
    vehicle = add_vehicle(brands, 1)
    with pytest.raises(StoreUnavailable):
        brands.telemetry.commit(_full_batch(brands, vehicle))
    assert {t.name: count(brands, t) for t in TABLES} == {t.name: 0 for t in TABLES}


def test_unreachable_database_is_store_unavailable(brands: SqlStore) -> None:
    vehicle = add_vehicle(brands, 1)
    batch = _full_batch(brands, vehicle)
    dbapi = brands.engine.dialect.loaded_dbapi

    def refuse() -> Any:
        raise dbapi.OperationalError("connection refused")

    down = SqlStore(create_engine(brands.engine.url, creator=refuse), brands.dialect)
    try:
        with pytest.raises(StoreUnavailable):
            down.telemetry.commit(batch)
        with pytest.raises(StoreUnavailable):
            down.telemetry.refs([vehicle.vin])
        with pytest.raises(StoreUnavailable):
            down.telemetry.windows([(vehicle.id, "boot-1")])
        with pytest.raises(StoreUnavailable):
            down.registry.vehicle(vehicle.vin)
    finally:
        down.close()


def test_exhausted_connection_pool_is_store_unavailable(brands: SqlStore) -> None:
    engine = create_engine(brands.engine.url, pool_size=1, max_overflow=0, pool_timeout=0.05)
    busy = SqlStore(engine, brands.dialect)
    try:
        with engine.connect(), pytest.raises(StoreUnavailable):
            busy.telemetry.refs([make_vin(1)])
    finally:
        busy.close()


def test_redelivered_history_is_idempotent(brands: SqlStore) -> None:
    tel = brands.telemetry
    vehicle = add_vehicle(brands, 1)
    rows = [point(brands, vehicle, SOC, T0 + i * 1000, 50.0 - i) for i in range(3)]
    tel.commit(WriteBatch(received_ms=T0, history=frames_of(rows)))
    tel.commit(WriteBatch(received_ms=T0 + 5000, history=frames_of(rows)))
    # Same (vehicle, signal, ts) with another value: the later write wins, as in the twin.
    tel.commit(
        WriteBatch(received_ms=T0 + 6000, history=frames_of([point(brands, vehicle, SOC, T0, 1.0)]))
    )
    got = tel.history(vehicle.id, [SOC], T0, T0 + 10_000, after=None, limit=100)
    assert got == [
        HistoryRow(SOC, T0, 1.0),
        HistoryRow(SOC, T0 + 1000, 49.0),
        HistoryRow(SOC, T0 + 2000, 48.0),
    ]
    assert count(brands, history) == 3


def test_one_batch_may_repeat_a_key(brands: SqlStore) -> None:
    """Duplicates inside one batch (two samples at one instant, two state messages) commit."""
    vehicle = add_vehicle(brands, 1)
    brands.telemetry.commit(
        WriteBatch(
            received_ms=T0,
            history=[  # two frames of one instant: merged, the later value winning
                frames_of([point(brands, vehicle, SOC, T0, 10.0)])[0],
                frames_of([point(brands, vehicle, SOC, T0, 11.0)])[0],
            ],
            presence=[
                PresenceChange(vehicle.id, True, T0, "s1"),
                PresenceChange(vehicle.id, False, T0 + 5, None),
            ],
        )
    )
    got = brands.telemetry.history(vehicle.id, [SOC], T0, T0 + 1, after=None, limit=10)
    assert got == [HistoryRow(SOC, T0, 11.0)]
    assert brands.telemetry.twin(vehicle).online is False


def test_twin_only_moves_forward_in_time(brands: SqlStore) -> None:
    vehicle = add_vehicle(brands, 1)
    set_twin(brands, vehicle, {SOC: 50.0}, ts=T0 + 2000)
    set_twin(brands, vehicle, {SOC: 40.0}, ts=T0 + 1000)  # older: ignored
    assert reported(brands, vehicle) == {SOC: (50.0, T0 + 2000)}
    set_twin(brands, vehicle, {SOC: 45.0}, ts=T0 + 2000)  # same instant: the later write wins
    assert reported(brands, vehicle) == {SOC: (45.0, T0 + 2000)}
    set_twin(brands, vehicle, {SOC: 30.0}, ts=T0 + 3000)
    assert reported(brands, vehicle) == {SOC: (30.0, T0 + 3000)}
    [signal] = brands.telemetry.twin(vehicle).reported
    assert signal.received_ms == T0 + 3050


def test_twin_merges_a_late_write_signal_by_signal(brands: SqlStore) -> None:
    """A write older than the vehicle's newest signal (store-and-forward, or two consumers
    committing out of order) takes the slow path: each signal keeps its newest value."""
    vehicle, other = add_vehicle(brands, 1), add_vehicle(brands, 2)
    set_twin(brands, vehicle, {SPEED: 80.0, SOC: 50.0}, ts=T0 + 2000)
    set_twin(brands, other, {SPEED: 10.0}, ts=T0)
    late = [
        point(brands, vehicle, SPEED, T0 + 1000, 60.0),  # older than the stored 80: kept out
        point(brands, vehicle, SOC, T0 + 3000, 49.0),  # newer: taken
        point(brands, vehicle, LIGHTS, T0, "AUTO"),  # not there yet: taken, however old
        point(brands, other, SPEED, T0 + 500, 12.0),  # the other vehicle: in order
    ]
    brands.telemetry.commit(WriteBatch(received_ms=T0 + 9000, twin=frames_of(late)))
    assert reported(brands, vehicle) == {
        SPEED: (80.0, T0 + 2000),
        SOC: (49.0, T0 + 3000),
        LIGHTS: ("AUTO", T0),
    }
    assert reported(brands, other) == {SPEED: (12.0, T0 + 500)}
    # The row's newest instant moved on: an in-order write after it is merged as usual.
    set_twin(brands, vehicle, {SPEED: 81.0}, ts=T0 + 3000)
    assert reported(brands, vehicle)[SPEED] == (81.0, T0 + 3000)


def test_presence_only_moves_forward_in_time(brands: SqlStore) -> None:
    tel = brands.telemetry
    vehicle = add_vehicle(brands, 1)

    def presence_of() -> tuple[bool, int | None, str | None]:
        state = tel.twin(vehicle)
        return state.online, state.online_since_ms, state.sid

    def change(online: bool, since: int, sid: str | None) -> None:
        tel.commit(
            WriteBatch(received_ms=since, presence=[PresenceChange(vehicle.id, online, since, sid)])
        )

    assert presence_of() == (False, None, None)
    change(True, T0 + 1000, "boot-2")
    change(False, T0 + 500, "boot-1")  # a late last will of the previous session: ignored
    assert presence_of() == (True, T0 + 1000, "boot-2")
    change(False, T0 + 1000, None)  # same instant: applied
    assert presence_of() == (False, T0 + 1000, None)
    # Two changes of one vehicle in one batch: the later one stands, whatever the order.
    tel.commit(
        WriteBatch(
            received_ms=T0 + 3000,
            presence=[
                PresenceChange(vehicle.id, False, T0 + 3000, None),
                PresenceChange(vehicle.id, True, T0 + 2000, "boot-3"),
            ],
        )
    )
    assert presence_of() == (False, T0 + 3000, None)


# --- reader: twin -------------------------------------------------------------------------


def test_twin_reports_each_value_type(brands: SqlStore) -> None:
    vehicle = add_vehicle(brands, 1)
    empty = brands.telemetry.twin(vehicle)
    assert (empty.online, empty.online_since_ms, empty.sid) == (False, None, None)
    assert (empty.reported, empty.desired) == ((), ())
    values: dict[str, Value] = {
        IS_MOVING: True,
        IS_CHARGING: False,
        ODOMETER: 123_456,
        SPEED: 87.5,
        SOC: 20.0,
        LIGHTS: "AUTO",
        FUEL_TYPES: ("GASOLINE", "E85"),
    }
    set_twin(brands, vehicle, values, ts=T0)
    state = brands.telemetry.twin(vehicle)

    assert state.vehicle == vehicle
    assert [s.path for s in state.reported] == sorted(values)
    got = {s.path: s.value for s in state.reported}
    assert got == values
    assert {p: type(v) for p, v in got.items()} == {p: type(v) for p, v in values.items()}
    assert state.desired == ()


def test_desired_state_is_set_and_replaced(brands: SqlStore) -> None:
    tel = brands.telemetry
    vehicle = add_vehicle(brands, 1)
    other = add_vehicle(brands, 2)
    tel.set_desired(vehicle.id, START_STOP, "START", T0, "ops@vw")
    tel.set_desired(vehicle.id, CHARGE_LIMIT, 80, T0 + 1, "ops@vw")
    tel.set_desired(vehicle.id, CHARGE_LIMIT, 90, T0 + 2, "app@vw")
    tel.set_desired(other.id, CHARGE_LIMIT, 70, T0 + 3, "ops@vw")

    desired = tel.twin(vehicle).desired
    assert desired == (
        DesiredSignal(CHARGE_LIMIT, 90, T0 + 2, "app@vw"),
        DesiredSignal(START_STOP, "START", T0, "ops@vw"),
    )
    assert type(desired[0].value) is int
    assert tel.twin(vehicle).reported == ()


# --- reader: fleet ------------------------------------------------------------------------


@pytest.fixture
def fleet(brands: SqlStore) -> list[Vehicle]:
    """Four vehicles: two online, one offline, one that never reported."""
    cars = [
        add_vehicle(brands, 1, model="ID.4"),
        add_vehicle(brands, 2, model="ID.3"),
        add_vehicle(brands, 3, brand="seat", model="Born"),
        add_vehicle(brands, 4, model="ID.4"),
    ]
    reports: list[dict[str, Value]] = [
        {SOC: 15.0, IS_CHARGING: False, LIGHTS: "AUTO", SPEED: 0.0},
        {SOC: 55.0, IS_CHARGING: True, LIGHTS: "OFF"},
        {SOC: 80.0, IS_CHARGING: True, LIGHTS: "AUTO"},
    ]
    for car, values in zip(cars, reports, strict=False):
        set_twin(brands, car, values)
    brands.telemetry.commit(
        WriteBatch(
            received_ms=T0,
            presence=[
                PresenceChange(cars[0].id, True, T0, "s1"),
                PresenceChange(cars[1].id, False, T0, None),
                PresenceChange(cars[2].id, True, T0, "s3"),
            ],
        )
    )
    return cars


def _fleet(
    store: SqlStore,
    scope: str | None = None,
    *,
    model: str | None = None,
    online: bool | None = None,
    where: tuple[SignalCondition, ...] = (),
    after: int = 0,
    limit: int = 100,
) -> list[int]:
    rows = store.telemetry.fleet(
        scope, model=model, online=online, conditions=where, after=after, limit=limit
    )
    return [vehicle.id for vehicle, _, _ in rows]


def test_fleet_lists_vehicles_with_presence_and_summary(
    brands: SqlStore, fleet: list[Vehicle]
) -> None:
    rows = brands.telemetry.fleet(None, model=None, online=None, conditions=(), after=0, limit=100)
    assert [(v, on) for v, on, _ in rows] == [
        (fleet[0], True),
        (fleet[1], False),
        (fleet[2], True),
        (fleet[3], False),
    ]
    summaries = [dict(values) for _, _, values in rows]
    assert summaries[0] == {SOC: 15.0, SPEED: 0.0}
    assert summaries[1] == {SOC: 55.0}
    assert summaries[3] == {}


def test_fleet_filters_by_scope_model_and_presence(brands: SqlStore, fleet: list[Vehicle]) -> None:
    ids = [v.id for v in fleet]
    assert _fleet(brands, "vw") == [ids[0], ids[1], ids[3]]
    assert _fleet(brands, "seat") == [ids[2]]
    assert _fleet(brands, "skoda") == []
    assert _fleet(brands, model="ID.4") == [ids[0], ids[3]]
    assert _fleet(brands, "seat", model="ID.4") == []
    assert _fleet(brands, online=True) == [ids[0], ids[2]]
    assert _fleet(brands, online=False) == [ids[1], ids[3]]  # never seen counts as offline
    assert _fleet(brands, "vw", online=True) == [ids[0]]


#: Conditions on the `fleet` fixture and the indexes of the vehicles that match them.
CONDITIONS: list[tuple[tuple[SignalCondition, ...], list[int]]] = [
    ((SignalCondition(SOC, "<", 20),), [0]),
    ((SignalCondition(SOC, "<=", 55),), [0, 1]),
    ((SignalCondition(SOC, ">", 55),), [2]),
    ((SignalCondition(SOC, ">=", 55.0),), [1, 2]),
    ((SignalCondition(SOC, "=", 55),), [1]),
    ((SignalCondition(SOC, "!=", 55),), [0, 2]),  # no value, no match
    ((SignalCondition(IS_CHARGING, "=", True),), [1, 2]),
    ((SignalCondition(IS_CHARGING, "!=", True),), [0]),
    ((SignalCondition(IS_CHARGING, "=", False),), [0]),
    ((SignalCondition(LIGHTS, "=", "AUTO"),), [0, 2]),
    ((SignalCondition(LIGHTS, "!=", "AUTO"),), [1]),
    ((SignalCondition(LIGHTS, "=", "BEAM"),), []),
    ((SignalCondition(SPEED, "<", 100),), [0]),
    ((SignalCondition(ODOMETER, ">", 0),), []),  # a signal nobody reported
    ((SignalCondition(SOC, ">", 10), SignalCondition(IS_CHARGING, "=", True)), [1, 2]),
    ((SignalCondition(SOC, ">", 10), SignalCondition(LIGHTS, "=", "AUTO")), [0, 2]),
]


def test_fleet_signal_conditions(brands: SqlStore, fleet: list[Vehicle]) -> None:
    """Numbers, booleans and string equality (one database for all cases, for speed)."""
    for where, expected in CONDITIONS:
        assert _fleet(brands, where=where) == [fleet[i].id for i in expected], where


def test_fleet_values_include_the_condition_signals(brands: SqlStore, fleet: list[Vehicle]) -> None:
    rows = brands.telemetry.fleet(
        "vw",
        model=None,
        online=None,
        conditions=[SignalCondition(LIGHTS, "=", "AUTO")],
        after=0,
        limit=10,
    )
    assert [(v.id, dict(values)) for v, _, values in rows] == [
        (fleet[0].id, {SOC: 15.0, SPEED: 0.0, LIGHTS: "AUTO"})
    ]


def test_fleet_keyset_pagination(brands: SqlStore, fleet: list[Vehicle]) -> None:
    ids = [v.id for v in fleet]
    assert _fleet(brands, limit=2) == ids[:2]
    assert _fleet(brands, after=ids[1], limit=2) == ids[2:]
    assert _fleet(brands, after=ids[3], limit=2) == []
    charging = (SignalCondition(IS_CHARGING, "=", True),)
    assert _fleet(brands, where=charging, limit=1) == [ids[1]]
    assert _fleet(brands, where=charging, after=ids[1], limit=1) == [ids[2]]


# --- reader: history ----------------------------------------------------------------------


def test_history_range_order_and_types(brands: SqlStore) -> None:
    tel = brands.telemetry
    vehicle = add_vehicle(brands, 1)
    other = add_vehicle(brands, 2)
    # Speed's id is allocated first, so id order and path order disagree.
    speed_id = tel.signal_ids([SPEED])[SPEED]
    assert tel.signal_ids([ACCEL])[ACCEL] > speed_id
    record(
        brands,
        vehicle,
        [
            (SPEED, T0 + 2000, 30.5),
            (ACCEL, T0 + 2000, -1.5),
            (SPEED, T0 - 1, 99.0),  # before `since`
            (SPEED, T0, 28.0),  # at `since`: included
            (ACCEL, T0 + 3000, 0.5),
            (SPEED, T0 + 3000, 31.0),  # at `until`: excluded
            (IS_MOVING, T0 + 1000, True),
            (LIGHTS, T0 + 1000, "BEAM"),
            (FUEL_TYPES, T0 + 1000, ("GASOLINE", "E85")),
            (ODOMETER, T0 + 1000, 42_000),
        ],
    )
    record(brands, other, [(SPEED, T0 + 1000, 120.0)])

    got = tel.history(
        vehicle.id,
        [SPEED, ACCEL, LIGHTS, IS_MOVING, FUEL_TYPES, ODOMETER],
        T0,
        T0 + 3000,
        after=None,
        limit=100,
    )
    assert got == [
        HistoryRow(SPEED, T0, 28.0),
        HistoryRow(LIGHTS, T0 + 1000, "BEAM"),
        HistoryRow(IS_MOVING, T0 + 1000, True),
        HistoryRow(FUEL_TYPES, T0 + 1000, ("GASOLINE", "E85")),
        HistoryRow(ODOMETER, T0 + 1000, 42_000),
        HistoryRow(ACCEL, T0 + 2000, -1.5),
        HistoryRow(SPEED, T0 + 2000, 30.5),
    ]
    assert [(r.ts, r.path) for r in got] == sorted((r.ts, r.path) for r in got)
    by_path = {r.path: r.value for r in got}
    assert by_path[IS_MOVING] is True
    assert isinstance(by_path[FUEL_TYPES], tuple)
    assert isinstance(by_path[LIGHTS], str)

    assert tel.history(vehicle.id, [ACCEL], T0, T0 + 3001, after=None, limit=100) == [
        HistoryRow(ACCEL, T0 + 2000, -1.5),
        HistoryRow(ACCEL, T0 + 3000, 0.5),
    ]
    assert tel.history(vehicle.id, [SOC], T0, T0 + 3000, after=None, limit=100) == []
    assert tel.history(vehicle.id, [SPEED], T0 + 3001, T0 + 9000, after=None, limit=100) == []
    assert tel.history(other.id, [SPEED, ACCEL], T0, T0 + 3000, after=None, limit=10) == [
        HistoryRow(SPEED, T0 + 1000, 120.0)
    ]


def test_samples_of_one_instant_merge_across_messages(brands: SqlStore) -> None:
    """Two messages sampling different signals at the same instant: both are kept."""
    tel = brands.telemetry
    vehicle = add_vehicle(brands, 1)
    record(brands, vehicle, [(SPEED, T0, 10.0), (SOC, T0, 80.0)])
    record(brands, vehicle, [(ACCEL, T0, 0.25), (SOC, T0, 79.5)])  # SOC corrected
    got = tel.history(vehicle.id, [SPEED, SOC, ACCEL], T0, T0 + 1, after=None, limit=10)
    assert got == [
        HistoryRow(ACCEL, T0, 0.25),
        HistoryRow(SOC, T0, 79.5),
        HistoryRow(SPEED, T0, 10.0),
    ]
    assert count(brands, history) == 1  # one sample instant of one vehicle


def test_history_of_a_sparse_signal_skips_samples_without_it(brands: SqlStore) -> None:
    tel = brands.telemetry
    vehicle = add_vehicle(brands, 1)
    samples: list[tuple[str, int, Value]] = [(SPEED, T0 + i, float(i)) for i in range(50)]
    samples += [(LIGHTS, T0 + i, f"L{i}") for i in (7, 19, 33)]
    record(brands, vehicle, samples)
    assert tel.history(vehicle.id, [LIGHTS], T0, T0 + MINUTE, after=None, limit=2) == [
        HistoryRow(LIGHTS, T0 + 7, "L7"),
        HistoryRow(LIGHTS, T0 + 19, "L19"),
    ]
    assert tel.history(vehicle.id, [LIGHTS], T0, T0 + MINUTE, after=(T0 + 19, LIGHTS), limit=2) == [
        HistoryRow(LIGHTS, T0 + 33, "L33")
    ]
    assert tel.buckets(vehicle.id, [LIGHTS], T0, T0 + MINUTE, MINUTE) == []


def test_history_keyset_pagination(brands: SqlStore) -> None:
    tel = brands.telemetry
    vehicle = add_vehicle(brands, 1)
    tel.signal_ids([SPEED])
    tel.signal_ids([SOC])
    tel.signal_ids([ACCEL])
    samples: list[tuple[str, int, Value]] = []
    for i in range(7):
        for signal in (SPEED, SOC, ACCEL):
            samples.append((signal, T0 + i * 1000, float(i)))
    record(brands, vehicle, samples)
    paths = [SPEED, SOC, ACCEL]
    everything = tel.history(vehicle.id, paths, T0, T0 + MINUTE, after=None, limit=1000)
    assert len(everything) == 21
    assert [(r.ts, r.path) for r in everything] == sorted((r.ts, r.path) for r in everything)

    pages: list[list[HistoryRow]] = []
    after: tuple[int, str] | None = None
    while True:
        page = tel.history(vehicle.id, paths, T0, T0 + MINUTE, after=after, limit=4)
        if not page:
            break
        pages.append(page)
        after = (page[-1].ts, page[-1].path)
    assert [len(p) for p in pages] == [4, 4, 4, 4, 4, 1]
    assert [r for p in pages for r in p] == everything

    # A cursor in the middle of one instant continues with that instant's later paths.
    assert tel.history(vehicle.id, paths, T0, T0 + MINUTE, after=(T0 + 1000, SOC), limit=2) == [
        HistoryRow(SPEED, T0 + 1000, 1.0),
        HistoryRow(ACCEL, T0 + 2000, 2.0),
    ]
    # The cursor's path need not be among the paths asked for.
    assert tel.history(vehicle.id, [SOC], T0, T0 + MINUTE, after=(T0 + 5000, ACCEL), limit=5) == [
        HistoryRow(SOC, T0 + 5000, 5.0),
        HistoryRow(SOC, T0 + 6000, 6.0),
    ]


# --- reader: buckets ----------------------------------------------------------------------


def test_buckets_downsample_numbers_only(brands: SqlStore) -> None:
    tel = brands.telemetry
    vehicle = add_vehicle(brands, 1)
    other = add_vehicle(brands, 2)
    since = T0 + 7  # buckets start at `since`, not at a round time
    until = since + 3 * MINUTE
    record(
        brands,
        vehicle,
        [
            (SOC, since - 1, 99.0),  # before the range
            (SOC, since, 80.0),  # bucket 0
            (SOC, since + 20_000, 70.0),
            (SOC, since + 50_000, 75.0),
            (SOC, since + 2 * MINUTE + 10_000, 66.0),  # bucket 2 (bucket 1 is empty)
            (SOC, since + 3 * MINUTE - 1, 60.0),
            (SOC, until, 1.0),  # at `until`: excluded
            (IS_CHARGING, since + 10_000, True),
            (IS_CHARGING, since + 30_000, False),
            (IS_CHARGING, since + 40_000, True),
            (LIGHTS, since + 10_000, "AUTO"),  # not a number: no buckets
            (FUEL_TYPES, since + 10_000, ("DIESEL",)),
        ],
    )
    record(brands, other, [(SOC, since + 1000, 5.0)])

    def buckets(paths: list[str], vehicle_id: int, size: int) -> list[Bucket]:
        found = tel.buckets(vehicle_id, paths, since, until, size)
        assert all(type(b.count) is int and type(b.avg) is float for b in found)
        return [replace(b, avg=round(b.avg, 9)) for b in found]  # SQL AVG rounds its own way

    # Expected values worked out by hand from the samples above.
    assert buckets([SOC, IS_CHARGING, LIGHTS, FUEL_TYPES], vehicle.id, MINUTE) == [
        Bucket(IS_CHARGING, since, 3, 0.0, round(2 / 3, 9), 1.0, 1.0),
        Bucket(SOC, since, 3, 70.0, 75.0, 80.0, 75.0),
        Bucket(SOC, since + 2 * MINUTE, 2, 60.0, 63.0, 66.0, 60.0),  # last is not max
    ]
    # One bucket over the whole range; a bucket larger than the range.
    whole = [Bucket(SOC, since, 5, 60.0, 70.2, 80.0, 60.0)]  # (80+70+75+66+60) / 5
    assert buckets([SOC], vehicle.id, 3 * MINUTE) == whole
    assert buckets([SOC], vehicle.id, 24 * 60 * MINUTE) == whole
    assert buckets([LIGHTS, FUEL_TYPES, SPEED], vehicle.id, MINUTE) == []
    assert buckets([SOC], other.id, MINUTE) == [Bucket(SOC, since, 1, 5.0, 5.0, 5.0, 5.0)]


# --- reader: retention and counts ---------------------------------------------------------


def test_purge_history_removes_rows_and_events_before_the_cut(brands: SqlStore) -> None:
    tel = brands.telemetry
    vehicle = add_vehicle(brands, 1)
    tel.commit(
        WriteBatch(
            received_ms=T0 + 2000,
            history=frames_of(
                [point(brands, vehicle, SPEED, T0 + i * 1000, 10.0 * i) for i in range(3)]
            ),
            twin=frames_of([point(brands, vehicle, SPEED, T0 + 2000, 20.0)]),
            events=[
                EventRecord(vehicle.id, T0, "door_opened", {}, T0 + 2000),
                EventRecord(vehicle.id, T0 + 2000, "door_closed", {}, T0 + 2000),
            ],
        )
    )
    assert tel.purge_history(T0 + 1000) == 1
    assert tel.history(vehicle.id, [SPEED], 0, T0 + MINUTE, after=None, limit=10) == [
        HistoryRow(SPEED, T0 + 1000, 10.0),
        HistoryRow(SPEED, T0 + 2000, 20.0),
    ]
    assert count(brands, events) == 1
    assert reported(brands, vehicle) == {SPEED: (20.0, T0 + 2000)}  # the twin is not history
    assert tel.purge_history(T0 + 1000) == 0
    assert tel.purge_history(T0 + MINUTE) == 2


def test_online_count(brands: SqlStore) -> None:
    tel = brands.telemetry
    cars = [add_vehicle(brands, n) for n in range(1, 4)]
    assert tel.online_count() == 0
    tel.commit(
        WriteBatch(
            received_ms=T0,
            presence=[
                PresenceChange(cars[0].id, True, T0, "a"),
                PresenceChange(cars[1].id, True, T0, "b"),
                PresenceChange(cars[2].id, False, T0, None),
            ],
        )
    )
    assert tel.online_count() == 2
    tel.commit(
        WriteBatch(received_ms=T0 + 1, presence=[PresenceChange(cars[0].id, False, T0 + 1, None)])
    )
    assert tel.online_count() == 1


# --- dead letters -------------------------------------------------------------------------


@pytest.fixture
def letters(brands: SqlStore) -> list[DeadLetter]:
    """Six dead letters of two brands and of unknown senders, oldest first, as stored."""
    golf, born = make_vin(1), make_vin(2, wmi="VSS")
    written = [
        dead_letter(T0, "unknown_vehicle", vin=make_vin(9)),
        dead_letter(T0 + 1, "invalid_value", vin=golf, brand="vw", payload=b"\xff\x00\x80"),
        dead_letter(T0 + 2, "duplicate", vin=golf, brand="vw"),
        dead_letter(T0 + 3, "invalid_value", vin=born, brand="seat"),
        dead_letter(T0 + 4, "malformed", topic="vehicles/x", payload=b"not json"),
        dead_letter(T0 + 5, "invalid_value", vin=golf, brand="vw", detail="speed -5 < min 0"),
    ]
    brands.telemetry.commit(WriteBatch(received_ms=T0, dead_letters=written[:3]))
    brands.telemetry.commit(WriteBatch(received_ms=T0 + 3, dead_letters=written[3:]))
    stored = brands.telemetry.dead_letters(None, reason=None, vin=None, after=0, limit=100)
    assert [replace(d, id=None) for d in reversed(stored)] == written
    return list(reversed(stored))


def _ids(rows: list[DeadLetter]) -> list[int | None]:
    return [d.id for d in rows]


def test_dead_letters_newest_first(brands: SqlStore, letters: list[DeadLetter]) -> None:
    got = brands.telemetry.dead_letters(None, reason=None, vin=None, after=0, limit=100)
    assert got == letters[::-1]
    ids = _ids(got)
    assert ids == sorted(ids, key=lambda i: -(i or 0))
    assert got[-2].payload == b"\xff\x00\x80"


def test_dead_letter_filters(brands: SqlStore, letters: list[DeadLetter]) -> None:
    dl = brands.telemetry.dead_letters
    golf = make_vin(1)
    assert dl("vw", reason=None, vin=None, after=0, limit=100) == [
        letters[5],
        letters[2],
        letters[1],
    ]
    assert dl("seat", reason=None, vin=None, after=0, limit=100) == [letters[3]]
    assert dl(None, reason="invalid_value", vin=None, after=0, limit=100) == [
        letters[5],
        letters[3],
        letters[1],
    ]
    assert dl("vw", reason="invalid_value", vin=None, after=0, limit=100) == [
        letters[5],
        letters[1],
    ]
    assert dl(None, reason=None, vin=golf, after=0, limit=100) == [
        letters[5],
        letters[2],
        letters[1],
    ]
    assert dl(None, reason="duplicate", vin=golf, after=0, limit=100) == [letters[2]]
    assert dl("seat", reason=None, vin=golf, after=0, limit=100) == []
    assert dl(None, reason="stale_seq", vin=None, after=0, limit=100) == []


def test_dead_letter_pagination(brands: SqlStore, letters: list[DeadLetter]) -> None:
    dl = brands.telemetry.dead_letters
    pages: list[list[DeadLetter]] = []
    after = 0
    while True:
        page = dl(None, reason=None, vin=None, after=after, limit=4)
        if not page:
            break
        pages.append(page)
        last = page[-1].id
        assert last is not None
        after = last
    assert [len(p) for p in pages] == [4, 2]
    assert [d for p in pages for d in p] == letters[::-1]
    assert dl("vw", reason=None, vin=None, after=_id(letters[5]), limit=1) == [letters[2]]
    assert dl("vw", reason=None, vin=None, after=_id(letters[1]), limit=10) == []


def _id(letter: DeadLetter) -> int:
    assert letter.id is not None
    return letter.id


def test_dead_letter_counts(brands: SqlStore, letters: list[DeadLetter]) -> None:
    counts = brands.telemetry.dead_letter_counts
    assert counts(None) == {
        "unknown_vehicle": 1,
        "invalid_value": 3,
        "duplicate": 1,
        "malformed": 1,
    }
    assert counts("vw") == {"invalid_value": 2, "duplicate": 1}
    assert counts("seat") == {"invalid_value": 1}
    assert counts("skoda") == {}


def test_purge_dead_letters(brands: SqlStore, letters: list[DeadLetter]) -> None:
    tel = brands.telemetry
    assert tel.purge_dead_letters(T0 + 2) == 2
    assert tel.dead_letters(None, reason=None, vin=None, after=0, limit=100) == letters[:1:-1]
    assert tel.purge_dead_letters(T0 + 2) == 0
    assert tel.purge_dead_letters(T0 + 100) == 4
    assert tel.dead_letter_counts(None) == {}


def test_a_replayed_retained_state_only_fills_in(brands: SqlStore) -> None:
    """The broker replays retained states on (re)subscribe: they never override live ones."""
    vehicle = add_vehicle(brands, 1)
    tel = brands.telemetry
    tel.commit(
        WriteBatch(received_ms=T0, presence=[PresenceChange(vehicle.id, True, T0, "s1", True)])
    )
    assert tel.twin(vehicle).online is True  # unknown before: the replay fills it in
    tel.commit(
        WriteBatch(received_ms=T0 + 10, presence=[PresenceChange(vehicle.id, False, T0 + 10, None)])
    )
    tel.commit(
        WriteBatch(
            received_ms=T0 + 99, presence=[PresenceChange(vehicle.id, True, T0 + 99, "s1", True)]
        )
    )
    state = tel.twin(vehicle)
    assert (state.online, state.online_since_ms) == (False, T0 + 10)
