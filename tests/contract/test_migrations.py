"""Alembic migrations against each database: idempotent, complete, at head."""

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, select, text

from autocloud.adapters.sql.migrate import alembic_config, upgrade
from autocloud.adapters.sql.schema import metadata
from autocloud.adapters.sql.store import SqlStore
from autocloud.bootstrap import open_store
from autocloud.domain.records import Brand, HistoryRow, Value
from tests.contract.helpers import (
    FUEL_TYPES,
    IS_MOVING,
    LIGHTS,
    MINUTE,
    ODOMETER,
    SPEED,
    T0,
    add_vehicle,
    record,
    reported,
    set_twin,
)


def _recorded_versions(store: SqlStore) -> list[str]:
    with store.engine.connect() as conn:
        return list(conn.execute(text("SELECT version_num FROM alembic_version")).scalars())


def _head(store: SqlStore) -> str:
    heads = ScriptDirectory.from_config(alembic_config(store.engine)).get_heads()
    assert len(heads) == 1, f"the migrations have several heads: {heads}"
    return heads[0]


def test_database_records_the_head_revision(store: SqlStore) -> None:
    assert _recorded_versions(store) == [_head(store)]


def test_tables_and_columns_of_schema_exist(store: SqlStore) -> None:
    found = inspect(store.engine)
    assert set(found.get_table_names()) == {*metadata.tables, "alembic_version"}
    for name, table in metadata.tables.items():
        columns = {c["name"] for c in found.get_columns(name)}
        assert columns == {c.name for c in table.columns}, name
        primary = found.get_pk_constraint(name)["constrained_columns"]
        assert primary == [c.name for c in table.primary_key.columns], name


def test_migrated_schema_matches_schema_py(store: SqlStore) -> None:
    """Nothing for autogenerate to do: the migrations build exactly what schema.py says."""
    with store.engine.connect() as conn:
        differences = compare_metadata(MigrationContext.configure(conn), metadata)
    assert differences == []


def test_upgrading_a_migrated_database_is_a_no_op(store: SqlStore, db_url: str) -> None:
    store.registry.add_brand("vw", "Volkswagen", T0)
    before = _recorded_versions(store)

    upgrade(store.engine)
    store.migrate()
    again = open_store(db_url)  # what every start of the platform does
    again.close()

    assert _recorded_versions(store) == before == [_head(store)]
    assert store.registry.brands(None) == [Brand("vw", "Volkswagen", T0)]
    with store.engine.connect() as conn:
        assert conn.execute(select(metadata.tables["brands"].c.id)).scalars().all() == ["vw"]


def test_history_survives_the_change_of_layout_both_ways(brands: SqlStore) -> None:
    """0009 regroups per-signal history rows into per-sample bodies; its downgrade splits them."""
    store = brands
    vehicle = add_vehicle(store, 1)
    tel = store.telemetry
    samples: list[tuple[str, int, Value]] = [
        (SPEED, T0, 12.5),
        (IS_MOVING, T0, True),
        (LIGHTS, T0, "BEAM"),
        (FUEL_TYPES, T0, ("GASOLINE", "E85")),
        (ODOMETER, T0 + 1000, 42_000),
        (SPEED, T0 + 1000, 13.0),
    ]
    record(store, vehicle, samples)
    paths = [SPEED, IS_MOVING, LIGHTS, FUEL_TYPES, ODOMETER]
    before = tel.history(vehicle.id, paths, T0, T0 + MINUTE, after=None, limit=100)
    assert len(before) == len(samples)

    config = alembic_config(store.engine)
    with store.engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, "0008")
    with store.engine.connect() as conn:
        old = conn.execute(text("SELECT signal_id, ts, num, txt FROM history")).all()
    assert len(old) == len(samples)
    ids = tel.signal_ids(paths)
    by_key = {(r.signal_id, r.ts): (r.num, r.txt) for r in old}
    assert by_key[(ids[SPEED], T0)] == (12.5, None)
    assert by_key[(ids[IS_MOVING], T0)] == (1.0, "true")
    assert by_key[(ids[LIGHTS], T0)] == (None, '"BEAM"')
    assert by_key[(ids[ODOMETER], T0 + 1000)] == (42_000.0, None)

    # Rows only the old layout could hold: a double needing 17 digits, text with U+0000.
    with store.engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO history (vehicle_id, signal_id, ts, num, txt) "
                "VALUES (:v, :s, :t, :n, :x)"
            ),
            [
                {"v": vehicle.id, "s": ids[SPEED], "t": T0 + 2000, "n": 0.1 + 0.2, "x": None},
                {"v": vehicle.id, "s": ids[LIGHTS], "t": T0 + 2000, "n": None, "x": '"a\\u0000b"'},
            ],
        )

    upgrade(store.engine)
    after = tel.history(vehicle.id, paths, T0, T0 + MINUTE, after=None, limit=100)
    assert after[: len(before)] == before
    assert after[len(before) :] == [
        HistoryRow(LIGHTS, T0 + 2000, after[-2].value),
        HistoryRow(SPEED, T0 + 2000, 0.30000000000000004),  # every digit carried over
    ]
    # jsonb cannot hold U+0000: PostgreSQL carries it over as U+FFFD, SQLite as it was.
    assert after[-2].value in ("a\x00b", "a\ufffdb")
    assert tel.buckets(vehicle.id, [SPEED], T0, T0 + 2000, MINUTE)[0].avg == 12.75


def test_twin_survives_the_change_of_layout_both_ways(brands: SqlStore) -> None:
    """0010 folds per-signal twin rows into one row per vehicle; its downgrade splits them."""
    store = brands
    vehicle, other = add_vehicle(store, 1), add_vehicle(store, 2)
    values: dict[str, Value] = {
        SPEED: 12.5,
        IS_MOVING: True,
        LIGHTS: "BEAM",
        FUEL_TYPES: ("GASOLINE", "E85"),
        ODOMETER: 42_000,
    }
    set_twin(store, vehicle, values, ts=T0)
    set_twin(store, vehicle, {SPEED: 0.1 + 0.2}, ts=T0 + 1000)
    set_twin(store, other, {SPEED: 3.0}, ts=T0 + 5)
    before = {v.id: reported(store, v) for v in (vehicle, other)}

    config = alembic_config(store.engine)
    with store.engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, "0009")
    with store.engine.connect() as conn:
        old = conn.execute(text("SELECT vehicle_id, signal_id, ts, value, num FROM twin")).all()
    assert len(old) == len(values) + 1
    ids = store.telemetry.signal_ids(values)
    by_key = {(r.vehicle_id, r.signal_id): (r.ts, r.num) for r in old}
    assert by_key[(vehicle.id, ids[SPEED])] == (T0 + 1000, 0.30000000000000004)
    assert by_key[(vehicle.id, ids[IS_MOVING])] == (T0, 1.0)
    assert by_key[(vehicle.id, ids[LIGHTS])] == (T0, None)

    upgrade(store.engine)
    assert {v.id: reported(store, v) for v in (vehicle, other)} == before
    # The carried-over rows take the fast merge again.
    set_twin(store, vehicle, {SPEED: 14.0}, ts=T0 + 2000)
    assert reported(store, vehicle)[SPEED] == (14.0, T0 + 2000)


def test_history_changes_to_a_rowid_table_on_sqlite_and_back(brands: SqlStore) -> None:
    """0011 copies SQLite history into a rowid table (appends in arrival order); its downgrade
    clusters it on the key again. PostgreSQL's heap is untouched either way."""
    store = brands
    vehicle, other = add_vehicle(store, 1), add_vehicle(store, 2)
    record(store, other, [(SPEED, T0 + 5, 3.0)])
    record(store, vehicle, [(SPEED, T0, 12.5), (LIGHTS, T0, "BEAM"), (SPEED, T0 + 1000, 13.0)])
    paths = [SPEED, LIGHTS]
    before = [
        store.telemetry.history(v.id, paths, T0, T0 + MINUTE, after=None, limit=100)
        for v in (vehicle, other)
    ]
    sqlite = store.engine.dialect.name == "sqlite"

    def clustered() -> bool:
        with store.engine.connect() as conn:
            sql = conn.execute(text("SELECT sql FROM sqlite_master WHERE name = 'history'"))
            return "WITHOUT ROWID" in sql.scalar_one().upper()

    assert not sqlite or not clustered()
    config = alembic_config(store.engine)
    with store.engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, "0010")
    assert not sqlite or clustered()
    upgrade(store.engine)
    assert not sqlite or not clustered()
    after = [
        store.telemetry.history(v.id, paths, T0, T0 + MINUTE, after=None, limit=100)
        for v in (vehicle, other)
    ]
    assert after == before and len(before[0]) == 3
    # The key still refuses a second row for an instant: a redelivery merges into the first.
    record(store, vehicle, [(LIGHTS, T0 + 1000, "LOW")])
    rows = store.telemetry.history(vehicle.id, paths, T0, T0 + MINUTE, after=None, limit=100)
    assert len(rows) == 4 and HistoryRow(LIGHTS, T0 + 1000, "LOW") in rows
