"""Replay of real OBD-II recordings: parsing, the PID -> VSS mapping, and the platform after.

The end-to-end test is issue 3's: after replaying drive1.csv through MQTT as one vehicle, the
twin holds the recording's last row and history holds one point per row.
"""

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer import Typer
from typer.testing import CliRunner

from autocloud.bootstrap import SYSTEM, Platform, build
from autocloud.domain.catalog import Catalog, load_vss_leaves
from autocloud.domain.errors import InvalidInput, Unauthorized
from autocloud.entrypoints.cli import replay_cmd
from autocloud.entrypoints.cli.client import CliError
from autocloud.settings import load_settings
from autocloud.sim.replay import (
    TABLE,
    UNMAPPED,
    Recording,
    ReplayStats,
    read_recording,
    replay,
    samples,
)
from tests.conftest import SHARED_DATA, VSS_PATH, free_port, need
from tests.support.vehicle import eventually

CAROBD = SHARED_DATA / "carobd"
DRIVE1 = CAROBD / "drive1.csv"
VIN = "MBJB29BT2E0000001"  # an Indian-built Toyota, as the Etios of the recordings
HEADER = "ENGINE_RPM (),VEHICLE_SPEED (),FUEL_TANK ()\r\n"


def drive1() -> Recording:
    need(DRIVE1.exists(), f"carOBD recording missing at {DRIVE1} (../shared/data)")
    return read_recording(DRIVE1)


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "rec.csv"
    path.write_bytes(text.encode())
    return path


def last_values(recording: Recording) -> tuple[int, dict[str, Any]]:
    """The final (ts, signals) that `samples` makes of a recording ending at ts 0."""
    return list(samples(recording, -(len(recording) - 1) * 1000))[-1]


# --- parsing -----------------------------------------------------------------------------------


def test_drive1_has_its_rows_and_named_columns() -> None:
    rec = drive1()
    assert len(rec) == 2709  # 2,710 lines: a header and one row a second, 45 minutes
    assert len(rec.columns) == 27
    assert rec.columns[:3] == ("ENGINE_RUN_TINE", "ENGINE_RPM", "VEHICLE_SPEED")
    assert not any("(" in name for name in rec.columns)
    assert not rec.truncated
    assert rec.row(0)["COOLANT_TEMPERATURE"] == 81.0
    assert rec.row(-1)["ENGINE_RPM"] == 658.5
    assert rec.column("CONTROL_MODULE_VOLTAGE")[-1] == 13.71


def test_trailing_commas_blanks_crlf_bom_and_blank_lines_are_tolerated(tmp_path: Path) -> None:
    text = "\ufeff" + HEADER + "800.0, 12.5, 50.2, \r\n\r\n 900.000000 ,13.0,50.1\r\n\r\n"
    rec = read_recording(write(tmp_path, text))
    assert rec.columns == ("ENGINE_RPM", "VEHICLE_SPEED", "FUEL_TANK")
    assert rec.rows == ((800.0, 12.5, 50.2), (900.0, 13.0, 50.1))


def test_a_last_line_cut_off_mid_write_is_dropped(tmp_path: Path) -> None:
    rec = read_recording(write(tmp_path, HEADER + "800.0, 12.5, 50.2,\r\n900.0, 13.0"))
    assert len(rec) == 1
    assert rec.truncated


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "is empty"),
        ("\r\n \r\n", "is empty"),
        ("1.0, 2.0,\r\n", "rec.csv:1: expected a header of column names"),
        (HEADER, "no rows of values"),
        (HEADER + "1, 2, 3,\r\n1, 2,\r\n3, 4, 5,\r\n", "rec.csv:3: 2 values, but the header"),
        (HEADER + "1, 2, 3, 4,\r\n", "rec.csv:2: 4 values, but the header names 3"),
        (HEADER + "1, 2, 3,\r\n1, 2,\r\n", "rec.csv:3: 2 values"),  # short, but not cut off
        (HEADER + "1, abc, 3,\r\n", "rec.csv:2: column VEHICLE_SPEED: 'abc' is not a number"),
        (HEADER + "1, , 3,\r\n", "rec.csv:2: column VEHICLE_SPEED: an empty value"),
        ("A (),B (),A ()\r\n1,2,3\r\n", "rec.csv:1: header names A more than once"),
        ("A (),,B ()\r\n1,2,3\r\n", "rec.csv:1: header column 2 has no name"),
    ],
)
def test_malformed_files_name_file_line_and_column(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(InvalidInput, match=re.escape(message)) as caught:
        read_recording(write(tmp_path, text))
    assert str(tmp_path / "rec.csv") in str(caught.value)


def test_missing_and_binary_files(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="cannot read recording"):
        read_recording(tmp_path / "absent.csv")
    (tmp_path / "rec.csv").write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(InvalidInput, match="not UTF-8"):
        read_recording(tmp_path / "rec.csv")


# --- mapping -----------------------------------------------------------------------------------


def test_every_column_is_mapped_or_has_a_reason() -> None:
    rec = drive1()
    mapped = {m.column for m in TABLE}
    assert mapped.isdisjoint(UNMAPPED)
    assert set(rec.columns) == mapped | set(UNMAPPED)


def test_mapped_signals_are_vss_6_leaves_of_the_platform_catalog() -> None:
    catalog = Catalog.builtin(None)
    need(VSS_PATH.exists(), f"VSS release JSON missing at {VSS_PATH}")
    release = load_vss_leaves(VSS_PATH)
    for mapping in TABLE:
        assert mapping.path in catalog, mapping.path
        assert mapping.path in release, mapping.path
        assert not mapping.path.startswith("Vehicle.OBD.")  # gone in VSS 6.0


@pytest.mark.parametrize("name", sorted(p.name for p in CAROBD.glob("*.csv")) or ["drive1.csv"])
def test_every_recorded_value_passes_the_catalog(name: str) -> None:
    need((CAROBD / name).exists(), f"carOBD recordings missing at {CAROBD}")
    rec = read_recording(CAROBD / name)
    stats = ReplayStats()
    rows = list(samples(rec, 0, stats=stats))
    catalog = Catalog.builtin(None)
    assert stats.skipped_by_column == {}
    assert len(rows) == stats.rows == len(rec)
    assert stats.sent == len(rec) * len(TABLE)
    for _ts, signals in rows:
        for path, value in signals.items():
            checked = catalog.check(path, value)
            assert checked.ok and checked.value == value and type(checked.value) is type(value)


def test_samples_are_typed_and_timed(tmp_path: Path) -> None:
    rec = read_recording(write(tmp_path, HEADER + "0, 0, 50.6,\r\n812.25, 31, 49.4,\r\n"))
    assert list(samples(rec, 1_000_000, period_ms=500)) == [
        (
            1_000_000,
            {
                "Vehicle.Powertrain.CombustionEngine.Speed": 0.0,
                "Vehicle.Powertrain.CombustionEngine.IsRunning": False,
                "Vehicle.Speed": 0.0,
                "Vehicle.IsMoving": False,
                "Vehicle.Powertrain.FuelSystem.RelativeLevel": 51,
            },
        ),
        (
            1_000_500,
            {
                "Vehicle.Powertrain.CombustionEngine.Speed": 812.25,
                "Vehicle.Powertrain.CombustionEngine.IsRunning": True,
                "Vehicle.Speed": 31.0,
                "Vehicle.IsMoving": True,
                "Vehicle.Powertrain.FuelSystem.RelativeLevel": 49,
            },
        ),
    ]


def test_refused_values_are_counted_per_column_not_sent(tmp_path: Path) -> None:
    text = "FUEL_TANK (),THROTTLE ()\r\n120, 20,\r\nnan, 20,\r\n-5, 300,\r\n40, 20,\r\n"
    stats = ReplayStats()
    rows = list(samples(read_recording(write(tmp_path, text)), 0, stats=stats))
    tps, fuel = (
        "Vehicle.Powertrain.CombustionEngine.TPS",
        "Vehicle.Powertrain.FuelSystem.RelativeLevel",
    )
    assert rows == [(0, {tps: 20}), (1000, {tps: 20}), (3000, {tps: 20, fuel: 40})]
    assert stats.skipped_by_column == {"FUEL_TANK": 3, "THROTTLE": 1}
    assert "above the maximum 100 percent" in stats.first_refusal["FUEL_TANK"]
    assert stats.rows == 4 and stats.empty_rows == 1 and stats.sent == 4


def test_a_recording_without_known_columns_is_refused_at_once(tmp_path: Path) -> None:
    rec = read_recording(write(tmp_path, "FOO (),BAR ()\r\n1,2,\r\n"))
    with pytest.raises(InvalidInput, match="none of the columns"):
        samples(rec, 0)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"batch": 0}, "batch must be 1 to 100"),
        ({"batch": 101}, "batch must be 1 to 100"),
        ({"speedup": -1.0}, "speedup must be 0"),
        ({"speedup": float("nan")}, "speedup must be 0"),
        ({"broker": "http://x:1"}, "broker must be mqtt://"),
        ({"broker": "mqtt://x:99999"}, "invalid port"),
    ],
)
def test_bad_options_fail_before_connecting(
    tmp_path: Path, options: dict[str, Any], message: str
) -> None:
    rec = read_recording(write(tmp_path, HEADER + "1, 2, 3,\r\n"))
    with pytest.raises(InvalidInput, match=message):
        replay(rec, vin=VIN, secret="x", **options)


# --- against the platform ----------------------------------------------------------------------


@pytest.fixture
def platform(tmp_path: Path) -> Iterator[Platform]:
    settings = load_settings(data_dir=tmp_path, embedded_broker_port=free_port(), ingest_wait_ms=5)
    p = build(settings)
    p.start()
    p.registry.add_brand(SYSTEM, "toyota", "Toyota")
    yield p
    p.stop()


def broker_of(p: Platform) -> str:
    host, port = p.settings.mqtt_host_port
    return f"mqtt://{host}:{port}"


@pytest.mark.parametrize("batch", [1, 10])
def test_twin_after_drive1_holds_its_last_values(platform: Platform, batch: int) -> None:
    rec = drive1()
    secret = platform.registry.add_vehicle(SYSTEM, VIN, "toyota", "Etios").secret
    progress: list[tuple[int, int]] = []
    stats = replay(
        rec,
        vin=VIN,
        secret=secret,
        broker=broker_of(platform),
        speedup=0,
        batch=batch,
        on_progress=lambda done, total: progress.append((done, total)),
    )
    assert stats.rows == len(rec) and stats.skipped_by_column == {}
    assert stats.messages == -(-len(rec) // batch)
    assert stats.last_ts is not None and stats.first_ts is not None
    assert stats.last_ts - stats.first_ts == (len(rec) - 1) * 1000
    assert progress[-1] == (len(rec), len(rec))
    assert [done for done, _ in progress] == sorted(done for done, _ in progress)

    twin = platform.telemetry.twin(SYSTEM, VIN)  # PUBACKs came after commit: no waiting
    _ts, expected = last_values(rec)
    assert {s.path: s.value for s in twin.reported} == expected
    assert expected["Vehicle.Powertrain.CombustionEngine.Speed"] == 658.5
    assert {s.ts for s in twin.reported} == {stats.last_ts}
    assert stats.last_ts <= twin.reported[0].received_ms  # nothing from the future
    # The replay ended by saying the car went offline; state is not held back like telemetry.
    eventually(lambda: not platform.telemetry.twin(SYSTEM, VIN).online)

    points, more = platform.telemetry.history(
        SYSTEM,
        VIN,
        ["Vehicle.Speed"],
        stats.first_ts,
        stats.last_ts + 1,
        cursor=None,
        limit=10_000,
    )
    assert more is None
    assert [p.ts for p in points] == list(range(stats.first_ts, stats.last_ts + 1, 1000))
    assert [p.value for p in points] == list(rec.column("VEHICLE_SPEED"))
    dead = platform.telemetry.dead_letters(SYSTEM, reason=None, vin=None, cursor=None, limit=10)
    assert dead.items == ()


def test_a_wrong_secret_is_refused(platform: Platform, tmp_path: Path) -> None:
    platform.registry.add_vehicle(SYSTEM, VIN, "toyota")
    rec = read_recording(write(tmp_path, HEADER + "1, 2, 3,\r\n"))
    with pytest.raises(Unauthorized, match="refused"):
        replay(rec, vin=VIN, secret="not-the-secret", broker=broker_of(platform), timeout_s=5)


# --- the command -------------------------------------------------------------------------------


def cli() -> Typer:
    app = Typer()
    app.command("replay")(replay_cmd.replay)
    app.command("noop")(lambda: None)  # keeps `replay` a named sub-command
    return app


def test_command_replays_with_a_given_secret(platform: Platform) -> None:
    drive1()
    secret = platform.registry.add_vehicle(SYSTEM, VIN, "toyota").secret
    args = ["replay", str(DRIVE1), "--vin", VIN.lower(), "--secret", secret]
    args += ["--broker", broker_of(platform), "--speedup", "0", "--batch", "20"]
    result = CliRunner().invoke(cli(), args)
    assert result.exit_code == 0, result.output
    assert "2709 rows, 136 messages, 24381 signal values sent" in " ".join(result.output.split())
    reported = {s.path: s.value for s in platform.telemetry.twin(SYSTEM, VIN).reported}
    assert reported["Vehicle.Powertrain.FuelSystem.RelativeLevel"] == 56


class FakeApi:
    """Stands in for the operator API: knows which VINs exist, records what was asked."""

    def __init__(self, existing: set[str]) -> None:
        self.existing = existing
        self.calls: list[str] = []

    def post(self, path: str, body: Any) -> Any:
        self.calls.append(path)
        vin = body.get("vin") or path.split("/")[3]
        if path == "/v1/vehicles":
            if vin in self.existing:
                raise CliError("409: vehicle exists")
            self.existing.add(vin)
        elif vin not in self.existing:
            raise CliError("404: vehicle not found")
        credential = {"password": "s3cret", "mqtt_url": "mqtt://example:1883"}
        return {"credential": credential}


@pytest.mark.parametrize(
    ("existing", "brand", "calls"),
    [
        (set(), "toyota", ["/v1/vehicles"]),
        ({VIN}, "toyota", ["/v1/vehicles", f"/v1/vehicles/{VIN}/credential"]),
        ({VIN}, None, [f"/v1/vehicles/{VIN}/credential"]),
    ],
)
def test_a_credential_is_provisioned_or_rotated(
    monkeypatch: pytest.MonkeyPatch, existing: set[str], brand: str | None, calls: list[str]
) -> None:
    api = FakeApi(existing)
    monkeypatch.setattr(replay_cmd, "Api", lambda: api)
    assert replay_cmd._credential(VIN, brand, "Etios") == ("s3cret", "mqtt://example:1883")
    assert api.calls == calls


def test_an_unknown_vehicle_without_brand_says_what_to_do(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(replay_cmd, "Api", lambda: FakeApi(set()))
    with pytest.raises(CliError, match=r"404: vehicle not found .*pass --brand"):
        replay_cmd._credential(VIN, None, "")
