"""Contract of the Registry port (brands, vehicles, owners, tokens), run on every adapter."""

import pytest

from autocloud.adapters.sql.store import SqlStore
from autocloud.domain.errors import Conflict, NotFound
from autocloud.domain.records import (
    Brand,
    Owner,
    PresenceChange,
    TokenInfo,
    Vehicle,
    VehicleRef,
    WriteBatch,
)
from autocloud.domain.replay import SeqWindow
from tests.contract.helpers import SOC, SPEED, T0, add_vehicle, frames_of, make_vin, point, record

# --- brands -----------------------------------------------------------------------------


def test_brands_are_listed_by_id_and_scoped(store: SqlStore) -> None:
    reg = store.registry
    assert reg.brands(None) == []
    vw = reg.add_brand("vw", "Volkswagen", T0)
    seat = reg.add_brand("seat", "SEAT", T0 + 1)

    assert vw == Brand("vw", "Volkswagen", T0)
    assert reg.brands(None) == [seat, vw]
    assert reg.brands("vw") == [vw]
    assert reg.brands("skoda") == []


def test_duplicate_brand_is_a_conflict_and_keeps_the_first(store: SqlStore) -> None:
    store.registry.add_brand("vw", "Volkswagen", T0)
    with pytest.raises(Conflict):
        store.registry.add_brand("vw", "Other", T0 + 5)
    assert store.registry.brands(None) == [Brand("vw", "Volkswagen", T0)]


# --- vehicles ---------------------------------------------------------------------------


def test_add_vehicle_assigns_an_id_and_reads_back(brands: SqlStore) -> None:
    reg = brands.registry
    added = add_vehicle(brands, 1, model="ID.4")
    assert added.id > 0
    assert added.vin == make_vin(1)
    assert reg.vehicle(added.vin) == added
    assert reg.vehicle(make_vin(99)) is None

    other = add_vehicle(brands, 2, brand="seat", model="Born")
    assert other.id != added.id
    assert reg.vehicle(other.vin) == Vehicle(
        other.id, make_vin(2, wmi="VSS"), "seat", "Born", 2024, "SEAT", T0, ()
    )


def test_add_vehicle_to_unknown_brand_is_not_found(brands: SqlStore) -> None:
    with pytest.raises(NotFound):
        add_vehicle(brands, 1, brand="skoda")
    assert brands.registry.vehicle(make_vin(1)) is None


def test_duplicate_vin_is_a_conflict_even_in_another_brand(brands: SqlStore) -> None:
    first = add_vehicle(brands, 1)
    with pytest.raises(Conflict):
        add_vehicle(brands, 1, model="Golf")
    with pytest.raises(Conflict):
        brands.registry.add_vehicle(
            Vehicle(0, first.vin, "seat", "Leon", None, None, T0 + 9), "e" * 64
        )
    assert brands.registry.vehicles(None, model=None, after=0, limit=10) == [first]


def test_vehicles_keyset_pagination_scope_and_model(brands: SqlStore) -> None:
    reg = brands.registry
    added = [
        add_vehicle(brands, 1, model="ID.4"),
        add_vehicle(brands, 2, brand="seat", model="Born"),
        add_vehicle(brands, 3, model="ID.3"),
        add_vehicle(brands, 4, model="ID.4"),
        add_vehicle(brands, 5, brand="seat", model="Born"),
    ]
    assert [v.id for v in added] == sorted(v.id for v in added)

    pages: list[list[Vehicle]] = []
    after = 0
    while True:
        page = reg.vehicles(None, model=None, after=after, limit=2)
        if not page:
            break
        pages.append(page)
        after = page[-1].id
    assert [len(p) for p in pages] == [2, 2, 1]
    assert [v for p in pages for v in p] == added

    assert reg.vehicles("vw", model=None, after=0, limit=10) == [added[0], added[2], added[3]]
    assert reg.vehicles("seat", model=None, after=0, limit=10) == [added[1], added[4]]
    assert reg.vehicles(None, model="ID.4", after=0, limit=10) == [added[0], added[3]]
    assert reg.vehicles("vw", model="ID.4", after=added[0].id, limit=10) == [added[3]]
    assert reg.vehicles("seat", model="ID.4", after=0, limit=10) == []
    assert reg.vehicles("vw", model=None, after=0, limit=1) == [added[0]]
    assert reg.vehicles(None, model=None, after=added[-1].id, limit=10) == []


def test_set_secret_and_secret_digest(brands: SqlStore) -> None:
    reg = brands.registry
    vehicle = add_vehicle(brands, 1, digest="a" * 64)
    assert reg.secret_digest(vehicle.vin) == "a" * 64
    reg.set_secret(vehicle.vin, "b" * 64)
    assert reg.secret_digest(vehicle.vin) == "b" * 64
    assert reg.secret_digest(make_vin(2)) is None
    with pytest.raises(NotFound):
        reg.set_secret(make_vin(2), "c" * 64)


def test_delete_vehicle(brands: SqlStore) -> None:
    reg = brands.registry
    keep = add_vehicle(brands, 1)
    gone = add_vehicle(brands, 2)
    owner = reg.add_owner("vw", "Erika Mustermann", "erika@example.com", T0)
    reg.attach_owner(gone.id, owner.id)

    reg.delete_vehicle(gone.vin)

    assert reg.vehicle(gone.vin) is None
    assert reg.secret_digest(gone.vin) is None
    assert reg.vehicles(None, model=None, after=0, limit=10) == [keep]
    assert brands.telemetry.refs([gone.vin, keep.vin]) == {keep.vin: VehicleRef(keep.id, "vw")}
    assert reg.owner(owner.id) == owner  # the owner outlives the vehicle
    with pytest.raises(NotFound):
        reg.delete_vehicle(gone.vin)
    with pytest.raises(NotFound):
        reg.delete_vehicle(make_vin(3))

    again = add_vehicle(brands, 2)  # the VIN can be registered anew
    assert reg.vehicle(gone.vin) == again
    assert again.owners == ()


def test_deleted_vehicle_leaves_no_telemetry_to_a_new_vehicle(brands: SqlStore) -> None:
    """Twin, presence, history, desired and replay windows go with the vehicle.

    Otherwise a vehicle registered later could inherit them (SQLite reuses the highest row id).
    """
    tel = brands.telemetry
    old = add_vehicle(brands, 1)
    window = SeqWindow()
    window.offer(7)
    tel.commit(
        WriteBatch(
            received_ms=T0,
            history=frames_of([point(brands, old, SPEED, T0, 50.0)]),
            twin=frames_of([point(brands, old, SPEED, T0, 50.0)]),
            presence=[PresenceChange(old.id, True, T0, "boot-1")],
            windows={(old.id, "boot-1"): window},
        )
    )
    tel.set_desired(old.id, SOC, 80.0, T0, "ops")
    brands.registry.delete_vehicle(old.vin)

    new = add_vehicle(brands, 2)
    twin = tel.twin(new)
    assert (twin.online, twin.reported, twin.desired) == (False, (), ())
    assert tel.online_count() == 0
    assert tel.windows([(new.id, "boot-1")]) == {}
    assert tel.history(new.id, [SPEED], T0 - 1, T0 + 1, after=None, limit=10) == []
    record(brands, new, [(SPEED, T0, 10.0)])  # a fresh vehicle writes normally
    assert [r.value for r in tel.history(new.id, [SPEED], T0, T0 + 1, after=None, limit=9)] == [
        10.0
    ]


# --- owners -----------------------------------------------------------------------------


def test_owners_add_read_and_page_by_scope(brands: SqlStore) -> None:
    reg = brands.registry
    erika = reg.add_owner("vw", "Erika Mustermann", "erika@example.com", T0)
    jordi = reg.add_owner("seat", "Jordi Puig", "jordi@example.es", T0 + 1)
    max_ = reg.add_owner("vw", "Max Mustermann", "max@example.com", T0 + 2)

    assert erika == Owner(erika.id, "vw", "Erika Mustermann", "erika@example.com", T0)
    assert reg.owner(jordi.id) == jordi
    assert reg.owner(max_.id + 100) is None
    assert reg.owners(None, after=0, limit=10) == [erika, jordi, max_]
    assert reg.owners("vw", after=0, limit=10) == [erika, max_]
    assert reg.owners("vw", after=erika.id, limit=10) == [max_]
    assert reg.owners(None, after=0, limit=2) == [erika, jordi]
    assert reg.owners(None, after=jordi.id, limit=2) == [max_]
    assert reg.owners("skoda", after=0, limit=10) == []


def test_owner_errors(brands: SqlStore) -> None:
    reg = brands.registry
    with pytest.raises(NotFound):
        reg.add_owner("skoda", "Jan Novak", "jan@example.cz", T0)
    reg.add_owner("vw", "Erika Mustermann", "erika@example.com", T0)
    with pytest.raises(Conflict):
        reg.add_owner("vw", "Erika M.", "erika@example.com", T0 + 1)
    # The same person may own vehicles of two brands.
    other = reg.add_owner("seat", "Erika Mustermann", "erika@example.com", T0 + 2)
    assert reg.owners(None, after=0, limit=10)[-1] == other


def test_attach_is_idempotent_and_detach_removes(brands: SqlStore) -> None:
    reg = brands.registry
    vehicle = add_vehicle(brands, 1)
    first = reg.add_owner("vw", "Erika Mustermann", "erika@example.com", T0)
    second = reg.add_owner("vw", "Max Mustermann", "max@example.com", T0)

    reg.attach_owner(vehicle.id, second.id)
    reg.attach_owner(vehicle.id, first.id)
    reg.attach_owner(vehicle.id, first.id)
    found = reg.vehicle(vehicle.vin)
    assert found is not None and found.owners == (first.id, second.id)
    # Lists report owners like the single read does.
    assert reg.vehicles(None, model=None, after=0, limit=10) == [found]

    reg.detach_owner(vehicle.id, first.id)
    reg.detach_owner(vehicle.id, first.id)  # detaching what is not attached does nothing
    found = reg.vehicle(vehicle.vin)
    assert found is not None and found.owners == (second.id,)

    with pytest.raises(NotFound):
        reg.attach_owner(vehicle.id + 100, first.id)
    with pytest.raises(NotFound):
        reg.attach_owner(vehicle.id, second.id + 100)


# --- tokens -----------------------------------------------------------------------------


def test_tokens_add_find_list_and_revoke(brands: SqlStore) -> None:
    reg = brands.registry
    group = reg.add_token("bootstrap", "1" * 64, "admin", None, T0)
    vw = reg.add_token("vw-ops", "2" * 64, "operator", "vw", T0 + 1)
    seat = reg.add_token("seat-viewer", "3" * 64, "viewer", "seat", T0 + 2)

    assert group == TokenInfo(group.id, "bootstrap", "admin", None, T0, None)
    assert reg.token_by_digest("2" * 64) == vw
    assert reg.token_by_digest("f" * 64) is None
    assert reg.tokens(None) == [group, vw, seat]
    assert reg.tokens("vw") == [vw]
    assert reg.tokens("skoda") == []

    reg.revoke_token(vw.id, T0 + 100)
    revoked = TokenInfo(vw.id, "vw-ops", "operator", "vw", T0 + 1, T0 + 100)
    assert reg.token_by_digest("2" * 64) == revoked
    reg.revoke_token(vw.id, T0 + 200)  # the first revocation time stays
    assert reg.tokens("vw") == [revoked]
    assert reg.token_by_digest("1" * 64) == group

    with pytest.raises(NotFound):
        reg.add_token("skoda-ops", "4" * 64, "viewer", "skoda", T0)
    assert reg.tokens(None) == [group, revoked, seat]
