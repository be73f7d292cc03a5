"""Contract of the CommandStore and the ingest writer of command results, on every adapter."""

import threading
import time
from dataclasses import replace
from typing import Any

import pytest

from autocloud.adapters.sql.schema_commands import command_audit, command_keys, commands
from autocloud.adapters.sql.store import SqlStore
from autocloud.domain.command_records import AuditEntry, Command, VehicleKey
from autocloud.domain.commands import State
from autocloud.domain.errors import Conflict
from autocloud.domain.protocol import CommandResult, CommandStatus
from autocloud.domain.records import PresenceChange, Reply, Vehicle, WriteBatch
from autocloud.ports.commands import Sending
from tests.contract.helpers import (
    FUEL_TYPES,
    IS_MOVING,
    ODOMETER,
    SOC,
    SPEED,
    T0,
    add_vehicle,
    count,
    set_twin,
)


def new(vehicle: Vehicle, n: int, **overrides: object) -> Command:
    fields: dict[str, object] = {
        "id": f"cmd{n:04d}",
        "vehicle_id": vehicle.id,
        "vin": vehicle.vin,
        "brand": vehicle.brand,
        "name": "lock",
        "params": {"percent": 80, "temp": 21.5},
        "state": State.QUEUED,
        "caller": "ops",
        "issued_ms": T0,
        "expires_ms": T0 + 60_000,
        "queued_ms": T0,
    }
    fields.update(overrides)
    return Command(**fields)  # type: ignore[arg-type]


def note(c: Command, action: str, at: int = T0) -> AuditEntry:
    return AuditEntry(at, c.caller, action, action, c.brand, c.vin, c.id, c.name)


def result(c: Command, status: CommandStatus, seq: int, **extra: object) -> Reply:
    message = CommandResult(v=1, sid="s", seq=seq, ts=T0, id=c.id, status=status, **extra)  # type: ignore[arg-type]
    return Reply(c.vehicle_id, c.vin, c.brand, T0 + seq, message)


@pytest.fixture
def car(brands: SqlStore) -> Vehicle:
    return add_vehicle(brands, 1)


def test_interlock_view_reads_presence_and_only_the_named_signals(
    brands: SqlStore, car: Vehicle
) -> None:
    store = brands.commands
    assert store.interlock_view(car.id, {SPEED, SOC}) == (False, {})  # never seen
    set_twin(brands, car, {SPEED: 12.5, SOC: 80.0, ODOMETER: 1000, FUEL_TYPES: ("ELECTRIC",)})
    presence = [PresenceChange(car.id, True, T0, "boot-1")]
    brands.telemetry.commit(WriteBatch(received_ms=T0, presence=presence))
    assert store.interlock_view(car.id, {SPEED}) == (True, {SPEED: 12.5})
    assert store.interlock_view(car.id, {SOC, FUEL_TYPES, IS_MOVING}) == (
        True,
        {SOC: 80.0, FUEL_TYPES: ("ELECTRIC",)},  # IS_MOVING not reported: left out
    )
    assert store.interlock_view(car.id, set()) == (True, {})
    other = add_vehicle(brands, 2)
    assert store.interlock_view(other.id, {SPEED}) == (False, {})  # not another car's twin


def test_add_and_read_back(brands: SqlStore, car: Vehicle) -> None:
    store = brands.commands
    added = store.add(new(car, 1, idempotency_key="k1", owner_id=None), note(new(car, 1), "queued"))
    assert added.row > 0
    got = store.get("cmd0001")
    assert got == added
    assert got.params == {"percent": 80, "temp": 21.5}  # types survive (int stays int)
    assert store.by_idempotency("vw", "ops", "k1") == added
    assert store.by_idempotency("vw", "someone-else", "k1") is None
    assert store.get("nope") is None


def test_idempotency_key_is_unique_per_caller(brands: SqlStore, car: Vehicle) -> None:
    store = brands.commands
    store.add(new(car, 1, idempotency_key="k"), note(new(car, 1), "queued"))
    with pytest.raises(Conflict):
        store.add(new(car, 2, idempotency_key="k"), note(new(car, 2), "queued"))
    store.add(new(car, 3, idempotency_key="k", caller="other"), note(new(car, 3), "queued"))
    store.add(new(car, 4), note(new(car, 4), "queued"))  # no key: no limit
    store.add(new(car, 5), note(new(car, 5), "queued"))
    assert count(brands, commands) == 4


def test_moves_follow_the_lifecycle_only(brands: SqlStore, car: Vehicle) -> None:
    store = brands.commands
    c = store.add(new(car, 1), note(new(car, 1), "queued"))
    assert store.move(c.id, State.SUCCEEDED, T0 + 1, note(c, "x")) is None  # not sent yet
    sent = store.move(c.id, State.SENT, T0 + 2, note(c, "sent"), counter=7, kid="k", sig="s")
    assert sent is not None and sent.state is State.SENT
    assert (sent.counter, sent.kid, sent.sig, sent.sent_ms) == (7, "k", "s", T0 + 2)
    assert store.move(c.id, State.SENT, T0 + 3, note(c, "again")) is None
    done = store.move(c.id, State.FAILED, T0 + 4, note(c, "failed"), reason="r", result={"a": 1})
    assert done is not None and (done.reason, done.result, done.finished_ms) == (
        "r",
        {"a": 1},
        T0 + 4,
    )
    assert store.move(c.id, State.EXPIRED, T0 + 5, note(c, "expired")) is None
    assert count(brands, command_audit) == 3  # queued, sent, failed: refusals write nothing


def test_waiting_due_and_lists(brands: SqlStore, car: Vehicle) -> None:
    store = brands.commands
    other = add_vehicle(brands, 2, brand="seat")
    a = store.add(new(car, 1), note(new(car, 1), "queued"))
    b = store.add(new(car, 2, expires_ms=T0 + 10), note(new(car, 2), "queued"))
    c = store.add(new(other, 3, brand="seat"), note(new(other, 3), "queued"))
    store.move(b.id, State.SENT, T0, note(b, "sent"), counter=1, kid="k", sig="s")
    assert [x.id for x in store.waiting(car.id)] == [a.id, b.id]
    assert [x.id for x in store.due(T0 + 10, 10)] == [b.id]
    assert [
        x.id
        for x in store.find(None, vehicle_id=None, state=None, vins=None, before=None, limit=10)
    ] == [c.id, b.id, a.id]
    page = store.find("vw", vehicle_id=None, state=None, vins=None, before=None, limit=1)
    assert [x.id for x in page] == [b.id]
    rest = store.find("vw", vehicle_id=None, state=None, vins=None, before=page[-1].row, limit=5)
    assert [x.id for x in rest] == [a.id]
    sent = store.find(None, vehicle_id=car.id, state=State.SENT, vins=None, before=None, limit=5)
    assert [x.id for x in sent] == [b.id]


def test_counters_are_per_vehicle_and_key_and_increase(brands: SqlStore, car: Vehicle) -> None:
    store = brands.commands
    other = add_vehicle(brands, 2)
    assert [store.next_counter(car.id, "k1") for _ in range(3)] == [1, 2, 3]
    assert store.next_counter(car.id, "k2") == 1
    assert store.next_counter(other.id, "k1") == 1


def test_keys_and_audit_log(brands: SqlStore, car: Vehicle) -> None:
    store = brands.commands
    key = VehicleKey("abcd", b"\x01" * 32, "phone", T0, "alice", owner_id=None)
    store.add_key(car.id, key)
    with pytest.raises(Conflict):
        store.add_key(car.id, key)
    assert store.keys(car.id) == [key]
    store.audit(AuditEntry(T0, "ops", "refused", "moving", "vw", car.vin, None, "unlock"))
    store.audit(AuditEntry(T0 + 5, "ops", "refused", "moving", "seat", "X", None, "unlock"))
    log = store.audit_log("vw", vin=None, command_id=None, since=0, until=T0 + 1, after=0, limit=9)
    assert [(e.brand, e.detail) for e in log] == [("vw", "moving")]
    assert (
        store.audit_log(
            None, vin=None, command_id=None, since=T0 + 1, until=T0 + 9, after=0, limit=9
        )[0].brand
        == "seat"
    )


def test_deleting_a_vehicle_takes_its_commands_keys_and_counters(
    brands: SqlStore, car: Vehicle
) -> None:
    store = brands.commands
    c = store.add(new(car, 1), note(new(car, 1), "queued"))
    store.add_key(car.id, VehicleKey("abcd", b"\x01" * 32, "phone", T0, "alice"))
    store.next_counter(car.id, "k")
    brands.registry.delete_vehicle(car.vin)
    assert store.get(c.id) is None
    assert count(brands, command_keys) == 0
    assert count(brands, command_audit) == 1  # the audit log outlives the vehicle


# --- the ingest writer ---------------------------------------------------------------------


def test_results_move_the_command_in_the_ingest_transaction(brands: SqlStore, car: Vehicle) -> None:
    store = brands.commands
    c = store.add(new(car, 1), note(new(car, 1), "queued"))
    store.move(c.id, State.SENT, T0, note(c, "sent"), counter=1, kid="k", sig="s")
    brands.telemetry.commit(
        WriteBatch(
            replies=[
                result(c, CommandStatus.ACCEPTED, 1),
                result(c, CommandStatus.SUCCEEDED, 2, data={"horn": True}),
            ]
        )
    )
    got = store.get(c.id)
    assert got is not None and got.state is State.SUCCEEDED
    assert (got.delivered_ms, got.finished_ms, got.result) == (T0 + 1, T0 + 2, {"horn": True})


def test_bad_results_are_audited_never_raised(brands: SqlStore, car: Vehicle) -> None:
    store = brands.commands
    other = add_vehicle(brands, 2)
    c = store.add(new(car, 1), note(new(car, 1), "queued"))
    store.move(c.id, State.SENT, T0, note(c, "sent"), counter=1, kid="k", sig="s")
    store.move(c.id, State.EXPIRED, T0, note(c, "expired"), reason="late")
    ghost = new(car, 9)
    stolen = replace(c, vehicle_id=other.id, vin=other.vin)  # another car answers c's id
    before = count(brands, command_audit)
    brands.telemetry.commit(
        WriteBatch(
            replies=[
                result(ghost, CommandStatus.SUCCEEDED, 1),
                result(c, CommandStatus.SUCCEEDED, 2),
                result(stolen, CommandStatus.REJECTED, 3, reason="bad_signature"),
            ]
        )
    )
    got = store.get(c.id)
    assert got is not None and (got.state, got.reason) == (State.EXPIRED, "late")
    log = store.audit_log(None, vin=None, command_id=None, since=0, until=2**62, after=0, limit=99)
    assert [e.action for e in log][-3:] == ["unknown_result", "ignored_result", "unknown_result"]
    assert count(brands, command_audit) == before + 3


def test_a_batch_of_results_for_several_commands_moves_each_and_audits_in_order(
    brands: SqlStore, car: Vehicle
) -> None:
    store = brands.commands
    sent = []
    for n in (1, 2, 3):
        c = store.add(new(car, n), note(new(car, n), "queued"))
        store.move(c.id, State.SENT, T0, note(c, "sent"), counter=n, kid="k", sig="s")
        sent.append(c)
    a, b, c = sent
    before = count(brands, command_audit)
    brands.telemetry.commit(
        WriteBatch(
            replies=[
                result(a, CommandStatus.ACCEPTED, 1),
                result(b, CommandStatus.ACCEPTED, 2),
                result(a, CommandStatus.SUCCEEDED, 3, data={"locked": True}),
                result(c, CommandStatus.REJECTED, 4, reason="bad_signature"),
                result(a, CommandStatus.FAILED, 5, reason="too late"),  # a has finished
            ]
        )
    )
    got = {x.id: store.get(x.id) for x in sent}
    assert [(g.state, g.delivered_ms, g.finished_ms) for g in got.values() if g] == [
        (State.SUCCEEDED, T0 + 1, T0 + 3),
        (State.DELIVERED, T0 + 2, None),
        (State.REJECTED, None, T0 + 4),
    ]
    done = got[a.id]
    assert done is not None and (done.result, done.reason) == ({"locked": True}, None)
    rejected = got[c.id]
    assert rejected is not None and rejected.reason == "bad_signature"
    log = store.audit_log(None, vin=None, command_id=None, since=0, until=2**62, after=0, limit=99)
    assert [(e.command_id, e.action) for e in log][before:] == [
        (a.id, "delivered"),
        (a.id, "succeeded"),
        (a.id, "ignored_result"),
        (b.id, "delivered"),
        (c.id, "rejected"),
    ]


def test_a_command_that_changes_while_its_results_are_written_is_moved_as_it_is_then(
    brands: SqlStore, car: Vehicle, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The batch reads its commands first; one expired in between (by another process) is
    not moved from the state that was read: its result is applied to it as it is now."""
    from autocloud.adapters.sql import command_results

    store = brands.commands
    c = store.add(new(car, 1), note(new(car, 1), "queued"))
    store.move(c.id, State.SENT, T0, note(c, "sent"), counter=1, kid="k", sig="s")
    real = command_results._apply

    def expired_meanwhile(conn: Any, moves: Any) -> bool:
        conn.execute(
            commands.update().where(commands.c.id == c.id).values(state=State.EXPIRED.value)
        )
        return real(conn, moves)

    monkeypatch.setattr(command_results, "_apply", expired_meanwhile)
    brands.telemetry.commit(WriteBatch(replies=[result(c, CommandStatus.SUCCEEDED, 1)]))
    got = store.get(c.id)
    assert got is not None and got.state is State.EXPIRED
    log = store.audit_log(None, vin=None, command_id=c.id, since=0, until=2**62, after=0, limit=9)
    assert log[-1].action == "ignored_result"
    assert log[-1].detail == "succeeded arrived for a command already expired"


def _send_together(
    brands: SqlStore, car: Vehicle, sends: list[tuple[int, str | None]]
) -> dict[int, Command | Exception]:
    """Add the commands from a thread each; on SQLite the first one's round is held (by its
    signing) until all the others are queued behind it."""
    store = brands.commands
    group = store._group  # None on PostgreSQL: each add commits on its own
    gate = threading.Event()
    if group is None:
        gate.set()
    outcomes: dict[int, Command | Exception] = {}

    def sign(counter: int) -> str:
        gate.wait(30)
        return f"sig{counter}"

    def worker(n: int, key: str | None) -> None:
        c = new(car, n, idempotency_key=key)
        try:
            outcomes[n] = store.add(
                c, note(c, "queued"), Sending(T0, note(c, "sent"), "kid1", sign)
            )
        except Exception as exc:
            outcomes[n] = exc

    threads = [threading.Thread(target=worker, args=send) for send in sends]
    threads[0].start()
    if group is not None:
        deadline = time.monotonic() + 30
        while not group._busy and time.monotonic() < deadline:
            time.sleep(0.01)
    for thread in threads[1:]:
        thread.start()
    if group is not None:
        while len(group._queue) < len(sends) - 1 and time.monotonic() < deadline:
            time.sleep(0.01)
    gate.set()
    for thread in threads:
        thread.join(30)
    return outcomes


def test_concurrent_adds_share_commits_and_a_conflict_fails_alone(
    brands: SqlStore, car: Vehicle
) -> None:
    """On SQLite the adds that arrive while a commit is under way share the next one
    (`command_group`); every add still gets its own outcome."""
    store = brands.commands
    done = _send_together(brands, car, [(0, None), (1, None), (2, None), (3, None)])
    assert sorted(c.counter or 0 for c in done.values() if isinstance(c, Command)) == [1, 2, 3, 4]
    if store._group is not None:
        assert store._group.rounds == 2  # the first alone, then the three others together
    # A reused idempotency key in a shared round: the round is rolled back and its adds run
    # again one by one, so only that add fails.
    done = _send_together(brands, car, [(4, "same"), (5, None), (6, "same"), (7, None)])
    assert isinstance(done[6], Conflict)
    kept = [done[n] for n in (4, 5, 7)]
    assert all(isinstance(c, Command) and c.state is State.SENT for c in kept)
    assert sorted(c.counter or 0 for c in kept if isinstance(c, Command)) == [5, 6, 7]
    assert store.get(new(car, 6).id) is None
    assert count(brands, commands) == 7


# --- desired state -------------------------------------------------------------------------

LOCK = "Vehicle.Cabin.Door.Row1.DriverSide.IsLocked"
LIMIT = "Vehicle.Powertrain.TractionBattery.Charging.ChargeLimit"


def _desired(brands: SqlStore, car: Vehicle) -> dict[str, tuple[object, str]]:
    return {d.path: (d.value, d.set_by) for d in brands.telemetry.twin(car).desired}


def test_set_desired_many_writes_all_values_at_once(brands: SqlStore, car: Vehicle) -> None:
    brands.telemetry.set_desired_many(car.id, {LOCK: True, LIMIT: 80}, T0, "command a")
    brands.telemetry.set_desired_many(car.id, {LIMIT: 90}, T0 + 1, "ops")
    brands.telemetry.set_desired_many(car.id, {}, T0 + 2, "nobody")  # nothing to write
    assert _desired(brands, car) == {LOCK: (True, "command a"), LIMIT: (90, "ops")}


@pytest.mark.parametrize(
    "status", [CommandStatus.FAILED, CommandStatus.REJECTED, CommandStatus.SUCCEEDED]
)
def test_a_result_that_undoes_a_command_clears_its_desired_values(
    brands: SqlStore, car: Vehicle, status: CommandStatus
) -> None:
    store = brands.commands
    c = store.add(new(car, 1), note(new(car, 1), "queued"))
    later = store.add(new(car, 2), note(new(car, 2), "queued"))
    store.move(c.id, State.SENT, T0, note(c, "sent"), counter=1, kid="k", sig="s")
    brands.telemetry.set_desired_many(car.id, {LOCK: True, LIMIT: 80}, T0, f"command {c.id}")
    # A later command set the limit since: its value is not c's to take back.
    brands.telemetry.set_desired_many(car.id, {LIMIT: 70}, T0 + 1, f"command {later.id}")
    brands.telemetry.commit(WriteBatch(replies=[result(c, status, 1, reason="x")]))
    left = _desired(brands, car)
    if status is CommandStatus.SUCCEEDED:  # kept: pending until the car reports it
        assert left == {LOCK: (True, f"command {c.id}"), LIMIT: (70, f"command {later.id}")}
    else:
        assert left == {LIMIT: (70, f"command {later.id}")}


def test_expiry_clears_desired_values(brands: SqlStore, car: Vehicle) -> None:
    store = brands.commands
    brands.telemetry.set_desired_many(car.id, {LIMIT: 60}, T0, "ops")
    c = store.add(new(car, 1), note(new(car, 1), "queued"), desired={LOCK: True})
    assert _desired(brands, car) == {LIMIT: (60, "ops"), LOCK: (True, f"command {c.id}")}
    assert store.move(c.id, State.EXPIRED, T0 + 5, note(c, "expired"), reason="late") is not None
    assert _desired(brands, car) == {LIMIT: (60, "ops")}


def test_add_stores_desired_state_and_marks_sent_in_one_transaction(
    brands: SqlStore, car: Vehicle
) -> None:
    store = brands.commands
    signed: list[int] = []

    def sign(counter: int) -> str:
        signed.append(counter)
        return f"sig{counter}"

    first = new(car, 1, idempotency_key="k")
    sending = Sending(T0 + 1, note(first, "sent"), "kid1", sign)
    got = store.add(first, note(first, "queued"), sending, {LOCK: True, LIMIT: 80})
    assert (got.state, got.counter, got.kid, got.sig, got.sent_ms) == (
        State.SENT,
        1,
        "kid1",
        "sig1",
        T0 + 1,
    )
    assert store.get(first.id) == got
    assert _desired(brands, car) == {
        LOCK: (True, f"command {first.id}"),
        LIMIT: (80, f"command {first.id}"),
    }
    log = store.audit_log(
        None, vin=None, command_id=first.id, since=0, until=2**62, after=0, limit=9
    )
    assert [(e.action, e.detail) for e in log] == [
        ("queued", "queued"),
        ("sent", "sent, counter 1"),
    ]
    # A reused idempotency key: nothing of the second command stays (no row, no audit entry,
    # no desired value), and the counter it took goes back with its transaction.
    again = new(car, 2, idempotency_key="k")
    with pytest.raises(Conflict):
        store.add(
            again,
            note(again, "queued"),
            Sending(T0, note(again, "sent"), "kid1", sign),
            {LIMIT: 55},
        )
    assert store.get(again.id) is None
    assert _desired(brands, car)[LIMIT] == (80, f"command {first.id}")
    entries = store.audit_log(
        None, vin=None, command_id=again.id, since=0, until=2**62, after=0, limit=9
    )
    assert entries == []
    # An app-signed command keeps its own counter and signature.
    app = new(car, 3, counter=7, kid="appkey", sig="appsig")
    kept = store.add(app, note(app, "queued"), Sending(T0 + 2, note(app, "sent")))
    assert (kept.state, kept.counter, kept.kid, kept.sig) == (State.SENT, 7, "appkey", "appsig")
    assert store.get(app.id) == kept
    # The next command the platform signs gets counter 2: the refused one's was not kept.
    nxt = new(car, 4)
    done = store.add(nxt, note(nxt, "queued"), Sending(T0 + 3, note(nxt, "sent"), "kid1", sign))
    assert (done.counter, done.sig) == (2, "sig2")
    assert store.get(nxt.id) == done


def _revoked(key: VehicleKey) -> AuditEntry:
    return AuditEntry(T0 + 5, "ops", "key_removed", key.kid, "vw", None)


def _ended(c: Command) -> AuditEntry:
    return AuditEntry(T0 + 5, "ops", "expired", "key revoked", c.brand, c.vin, c.id, c.name)


def test_removing_keys_ends_the_open_commands_they_signed(brands: SqlStore, car: Vehicle) -> None:
    store = brands.commands
    for kid, owner in (("aaaa", 7), ("bbbb", 8)):
        store.add_key(car.id, VehicleKey(kid, kid.encode() * 8, "phone", T0, "o", owner))
    signed = {"counter": 1, "kid": "aaaa", "sig": "s"}
    queued = store.add(new(car, 1, **signed), note(new(car, 1), "queued"))
    other = store.add(new(car, 2, counter=1, kid="bbbb", sig="s"), note(new(car, 2), "queued"))
    done = store.add(new(car, 3, counter=2, kid="aaaa", sig="s"), note(new(car, 3), "queued"))
    assert store.move(done.id, State.SENT, T0 + 1, note(done, "sent"))
    assert store.move(done.id, State.SUCCEEDED, T0 + 2, note(done, "succeeded"))
    gone, ended = store.remove_keys(car.id, ["aaaa", "zzzz"], _revoked, _ended)
    assert [k.kid for k in gone] == ["aaaa"]
    assert [(c.id, c.state, c.reason) for c in ended] == [(queued.id, State.EXPIRED, "key revoked")]
    assert [k.kid for k in store.keys(car.id)] == ["bbbb"]
    stays, history = store.get(other.id), store.get(done.id)
    assert stays is not None and stays.state is State.QUEUED  # another key's command stays
    assert history is not None and history.state is State.SUCCEEDED  # a finished one is history
    actions = [
        e.action
        for e in store.audit_log(
            None, vin=None, command_id=None, since=0, until=2**62, after=0, limit=100
        )
    ]
    assert actions.count("key_removed") == 1 and actions.count("expired") == 1
    assert store.remove_keys(car.id, ["aaaa"], _revoked, _ended) == ([], [])


def test_key_lists_take_increasing_serials_with_the_current_keys(
    brands: SqlStore, car: Vehicle
) -> None:
    store = brands.commands
    got: list[tuple[str, int, list[str]]] = []

    def publish(vin: str, serial: int, keys: list[VehicleKey]) -> None:
        got.append((vin, serial, [k.kid for k in keys]))

    assert store.key_list(car.id, publish) == 1
    store.add_key(car.id, VehicleKey("aaaa", b"\x01" * 32, "phone", T0, "alice", 7))
    assert store.key_list(car.id, publish) == 2
    assert got == [(car.vin, 1, []), (car.vin, 2, ["aaaa"])]
    assert store.next_counter(car.id, "platformkid") == 1  # command counters are apart
    assert store.vin_of(car.id) == car.vin
    brands.registry.delete_vehicle(car.vin)
    assert store.key_list(car.id, publish) is None and store.vin_of(car.id) is None


# PostgreSQL only: SQLite serves one platform process, where the lock of `Delivery` orders.
@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_two_processes_publish_a_vehicles_counters_in_order(
    brands: SqlStore, car: Vehicle, db_url: str
) -> None:
    """Two stores on one database (two API processes): each marks queued commands sent and
    publishes them; the publishes reach the broker in counter order (on PostgreSQL an
    advisory lock is held from the counter to the publish; SQLite serves one process, where
    the lock of `Delivery` does the same)."""
    import threading
    import time

    from autocloud.bootstrap import open_store

    assert brands.dialect.name == "postgresql"
    second = open_store(db_url)
    try:
        stores = (brands.commands, second.commands)
        ids = [store_add_queued(brands, car, n) for n in range(1, 21)]
        published: list[int] = []

        def publish(c: Command) -> None:
            assert c.counter is not None
            time.sleep(0.01 if c.counter % 2 else 0)  # odd ones hand over slowly
            published.append(c.counter)

        def work(k: int) -> None:
            for command_id in ids[k::2]:
                sending = Sending(T0 + 1, note(new(car, 0), "sent"), "kid1", lambda n: f"s{n}")
                stores[k].mark_sent(command_id, sending, publish)

        threads = [threading.Thread(target=work, args=(k,)) for k in (0, 1)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(published) == list(range(1, 21))
        assert published == sorted(published)
    finally:
        second.close()


def store_add_queued(brands: SqlStore, car: Vehicle, n: int) -> str:
    c = new(car, n)
    return brands.commands.add(c, note(c, "queued")).id
