"""The fleet map's snapshot reader (`adapters/sql/positions.py`) on SQLite and PostgreSQL."""

from autocloud.adapters.sql.positions import SqlPositions
from autocloud.adapters.sql.store import SqlStore
from autocloud.domain.records import PresenceChange, WriteBatch
from tests.contract.helpers import IS_CHARGING, LATITUDE, SOC, SPEED, T0, add_vehicle, set_twin

LONGITUDE = "Vehicle.CurrentLocation.Longitude"
LIGHTS = "Vehicle.Body.Lights.LightSwitch"


def _reader(store: SqlStore) -> SqlPositions:
    return SqlPositions(store.engine, store.telemetry.signal_ids, store.dialect.body)


def test_every_vehicle_with_its_rounded_map_fields_and_presence(brands: SqlStore) -> None:
    golf = add_vehicle(brands, 1, model="Golf")
    born = add_vehicle(brands, 2, brand="seat", model="Born")
    quiet = add_vehicle(brands, 3)  # never reported: listed, every field unknown
    set_twin(
        brands,
        golf,
        {LATITUDE: 48.123456789, LONGITUDE: 11.5, SPEED: 33.333, SOC: 71.06, LIGHTS: "AUTO"},
    )
    set_twin(brands, born, {LATITUDE: 41.4, LONGITUDE: 2.17, IS_CHARGING: True})
    brands.telemetry.commit(
        WriteBatch(received_ms=T0, presence=[PresenceChange(golf.id, True, T0, "s1")])
    )
    got = _reader(brands).positions(None, None)
    assert [(p.vin, p.brand, p.model) for p in got] == [
        (golf.vin, "vw", "Golf"),
        (born.vin, "seat", "Born"),
        (quiet.vin, "vw", "ID.4"),
    ]
    assert dict(got[0].fields) == {
        "online": 1,
        "lat": 48.12346,
        "lon": 11.5,
        "speed": 33.3,
        "soc": 71.1,
    }
    assert dict(got[1].fields) == {"online": 0, "lat": 41.4, "lon": 2.17, "charging": 1}
    assert dict(got[2].fields) == {"online": 0}


def test_a_brand_or_an_owner_s_vins_narrow_the_snapshot(brands: SqlStore) -> None:
    golf = add_vehicle(brands, 1)
    polo = add_vehicle(brands, 2)
    born = add_vehicle(brands, 3, brand="seat")
    for car in (golf, polo, born):
        set_twin(brands, car, {SPEED: 10.0})
    reader = _reader(brands)
    assert [p.vin for p in reader.positions("vw", None)] == [golf.vin, polo.vin]
    assert [p.vin for p in reader.positions("seat", None)] == [born.vin]
    assert reader.positions("skoda", None) == []
    assert [p.vin for p in reader.positions("vw", {polo.vin, born.vin})] == [polo.vin]
    assert reader.positions(None, frozenset()) == []
    # The values come with their own vehicle only, whichever filter applies.
    assert all(dict(p.fields) == {"online": 0, "speed": 10.0} for p in reader.positions("vw", None))
