"""The diagnostic-session store on SQLite and PostgreSQL: sessions, requests, answers."""

from autocloud.adapters.sql.store import SqlStore
from autocloud.domain.diag_session import DiagRequestRow, DiagSession
from autocloud.domain.protocol import DiagResponse
from autocloud.domain.records import Reply, WriteBatch
from tests.contract.helpers import T0, add_vehicle


def session(vehicle_id: int, sid: str, created: int = T0, *, brand: str = "vw") -> DiagSession:
    return DiagSession(
        id=sid,
        vehicle_id=vehicle_id,
        vin="",
        brand=brand,
        requested_by="ops",
        created_ms=created,
        expires_ms=created + 30_000,
        status="pending",
        ecus=("ECM", "BCM"),
        reads=("vin",),
        clear_dtcs=False,
    )


def rows(sid: str) -> list[DiagRequestRow]:
    return [
        DiagRequestRow(f"{sid}.0", 0, "ECM", "vin", "22f190"),
        DiagRequestRow(f"{sid}.1", 1, "BCM", "vin", "22f190"),
    ]


def answer(vehicle_id: int, vin: str, request_id: str, data: str, seq: int) -> Reply:
    message = DiagResponse(v=1, sid="s", seq=seq, ts=T0 + seq, id=request_id, ecu="ECM",
                           response=data)  # fmt: skip
    return Reply(vehicle_id, vin, "vw", T0 + 100 + seq, message)


def test_a_session_round_trips_with_its_requests(brands: SqlStore) -> None:
    car = add_vehicle(brands, 1)
    brands.diag_sessions.add(session(car.id, "ds1"), rows("ds1"))
    got = brands.diag_sessions.get("ds1")
    assert got is not None
    assert (got.vin, got.brand, got.ecus, got.reads, got.status) == (
        car.vin,
        "vw",
        ("ECM", "BCM"),
        ("vin",),
        "pending",
    )
    assert got.report is None and got.completed_ms is None
    assert brands.diag_sessions.requests("ds1") == rows("ds1")
    assert brands.diag_sessions.get("nosuch") is None
    assert brands.diag_sessions.pending() == [("ds1", T0 + 30_000)]


def test_ingest_stores_every_answer_even_unmatched(brands: SqlStore) -> None:
    car = add_vehicle(brands, 1)
    brands.diag_sessions.add(session(car.id, "ds1"), rows("ds1"))
    batch = WriteBatch(
        received_ms=T0,
        replies=[
            answer(car.id, car.vin, "ds1.0", "7F2278", 1),
            answer(car.id, car.vin, "ds1.0", "62F190", 2),
            answer(car.id, car.vin, "elsewhere.3", "62", 3),
        ],
    )
    brands.telemetry.commit(batch)
    got = brands.diag_sessions.answers(car.id, ["ds1.0", "ds1.1"])
    assert [(a.request_id, a.response, a.received_ms) for a in got] == [
        ("ds1.0", "7f2278", T0 + 101),
        ("ds1.0", "62f190", T0 + 102),
    ]
    assert [a.request_id for a in brands.diag_sessions.answers(car.id, ["elsewhere.3"])] == [
        "elsewhere.3"
    ]
    other = add_vehicle(brands, 2)
    assert brands.diag_sessions.answers(other.id, ["ds1.0"]) == []  # per vehicle
    assert brands.diag_sessions.answers(car.id, []) == []


def test_finish_closes_a_pending_session_once(brands: SqlStore) -> None:
    car = add_vehicle(brands, 1)
    brands.diag_sessions.add(session(car.id, "ds1"), rows("ds1"))
    report = {"complete": True, "ecus": [{"ecu": "ECM", "results": []}]}
    assert brands.diag_sessions.finish("ds1", "complete", T0 + 5, report)
    assert not brands.diag_sessions.finish("ds1", "incomplete", T0 + 6, None)
    got = brands.diag_sessions.get("ds1")
    assert got is not None
    assert (got.status, got.completed_ms, got.report) == ("complete", T0 + 5, report)
    assert brands.diag_sessions.pending() == []


def test_pages_are_newest_first_per_vehicle(brands: SqlStore) -> None:
    car, other = add_vehicle(brands, 1), add_vehicle(brands, 2)
    for i in range(5):
        brands.diag_sessions.add(session(car.id, f"ds{i}", T0 + i), [])
    brands.diag_sessions.add(session(other.id, "dsx", T0 + 9), [])
    first = brands.diag_sessions.page(car.id, before=None, limit=2)
    assert [s.id for s in first] == ["ds4", "ds3"]
    second = brands.diag_sessions.page(car.id, before="ds3", limit=10)
    assert [s.id for s in second] == ["ds2", "ds1", "ds0"]
    assert brands.diag_sessions.page(car.id, before="dsx", limit=10) == []  # not its cursor


def test_deleting_the_vehicle_deletes_its_sessions(brands: SqlStore) -> None:
    car = add_vehicle(brands, 1)
    brands.diag_sessions.add(session(car.id, "ds1"), rows("ds1"))
    brands.telemetry.commit(
        WriteBatch(received_ms=T0, replies=[answer(car.id, car.vin, "ds1.0", "62", 1)])
    )
    brands.registry.delete_vehicle(car.vin)
    assert brands.diag_sessions.get("ds1") is None
    assert brands.diag_sessions.requests("ds1") == []
    assert brands.diag_sessions.answers(car.id, ["ds1.0"]) == []
