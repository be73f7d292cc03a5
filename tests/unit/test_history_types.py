"""History values come back in their signal's type, whatever the store's JSON made of them."""

from types import SimpleNamespace

from autocloud.domain.catalog import Catalog
from autocloud.domain.records import HistoryRow
from autocloud.services.telemetry import TelemetryService

SPEED = "Vehicle.Speed"  # float
ODOMETER = "Vehicle.TraveledDistance"  # uint32
MOVING = "Vehicle.IsMoving"  # boolean


def typed(row: HistoryRow) -> HistoryRow:
    service = SimpleNamespace(_catalog=Catalog.builtin(None))
    return TelemetryService._typed(service, row)  # type: ignore[arg-type]


def test_a_float_signal_read_back_as_an_integer_is_a_float_again() -> None:
    """PostgreSQL's jsonb keeps 1e20 as the exact decimal 100000000000000000000."""
    got = typed(HistoryRow(SPEED, 1, 10**20))
    assert got == HistoryRow(SPEED, 1, 1e20) and isinstance(got.value, float)


def test_an_integer_signal_stored_as_a_float_is_an_integer_again() -> None:
    got = typed(HistoryRow(ODOMETER, 1, 42_000.0))
    assert got.value == 42_000 and isinstance(got.value, int)


def test_booleans_and_matching_types_are_left_alone() -> None:
    assert typed(HistoryRow(MOVING, 1, True)).value is True
    assert typed(HistoryRow(SPEED, 1, 12.5)) == HistoryRow(SPEED, 1, 12.5)
    assert typed(HistoryRow("Vehicle.Unknown", 1, 3)).value == 3
