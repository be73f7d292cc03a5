"""DTCs from the model's state, connection faults, bad input and store-and-forward."""

import random
from collections import Counter
from itertools import pairwise
from pathlib import Path
from typing import Any

import msgspec
import pytest

from autocloud.domain.catalog import Catalog
from autocloud.domain.errors import ConfigurationError
from autocloud.domain.protocol import (
    Event,
    ProtocolError,
    Reason,
    Telemetry,
    Topic,
    decode,
    samples_of,
)
from autocloud.domain.records import VehicleRef
from autocloud.ports.link import Inbound
from autocloud.services.ingest.service import Pipeline
from autocloud.services.metrics import Metrics
from autocloud.sim.dtc import DTC_RULES, could_raise, load_dtc_descriptions
from autocloud.sim.energy import PRESET_FOR, Powertrain
from autocloud.sim.faults import (
    BAD_INPUT_REASONS,
    MAX_CLOCK_SKEW_S,
    DtcMonitor,
    FaultPlan,
    SeqCounter,
    StoreAndForward,
    corrupt,
)
from autocloud.sim.forward import (
    event_body,
    numbered_sample_body,
    single_sample_body,
    telemetry_body,
)
from autocloud.sim.model import VehicleModel
from autocloud.sim.readout import Reading
from autocloud.sim.vehicle_state import NO_HAZARDS
from tests.support.memory import MemoryTelemetry

CATALOG = Catalog.builtin(None)
REPO = Path(__file__).resolve().parents[2]
SHARED = REPO.parent / "shared" / "data"
OBD_CODES = SHARED / "dtc" / "obd_codes.json"
VSS_RELEASE = SHARED / "vss" / "vss_release_6.0.json"
NOW = 1_800_000_000_000
VIN = "WVWZZZ1JZXW000001"
FUTURE_TOLERANCE_MS = 300_000
EARLIEST_TS = 946_684_800_000


def fresh(powertrain: Powertrain, **state: object) -> VehicleModel:
    model = VehicleModel(PRESET_FOR[powertrain], random.Random(9), hazards=NO_HAZARDS)
    for name, value in state.items():
        setattr(model.state, name, value)
    return model


def tick(model: VehicleModel, seconds: float = 1.0, speed: float = 0.0) -> None:
    model.step(seconds, speed, 0.0, moving=speed > 0, parked=False, hvac_on=False, lights_on=False)


def valid(values: dict[str, Reading]) -> bool:
    return all(CATALOG.check(path, value).ok for path, value in values.items())


# --- DTCs ------------------------------------------------------------------------------------


def test_a_weak_12v_battery_sets_p0562_with_a_freeze_frame_and_a_good_start_clears_it() -> None:
    model = fresh(Powertrain.ICE, lv_health=0.3, lv_soc=0.6)
    monitor = DtcMonitor(model)
    model.start_engine()
    tick(model)
    events = monitor.step()
    assert [e["type"] for e in events] == ["dtc.raised"]
    data = events[0]["data"]
    assert data["code"] == "P0562" and data["description"] == "System Voltage Low"
    frame = data["freeze_frame"]
    voltage = frame["Vehicle.LowVoltageBattery.CurrentVoltage"]
    assert isinstance(voltage, float) and voltage < 9.0
    assert frame["Vehicle.LowVoltageSystemState"] == "START"
    assert "Vehicle.Speed" in frame and valid(frame)
    signals = model.signals()
    assert signals["Vehicle.Diagnostics.DTCList"] == ["P0562"]
    assert signals["Vehicle.Diagnostics.DTCCount"] == 1
    tick(model, 600)
    assert monitor.step() == []  # the code stays for the rest of the drive
    model.stop_engine()
    model.state.lv_health, model.state.lv_soc = 1.0, 1.0  # a new battery
    model.start_engine()
    tick(model)
    cleared = monitor.step()
    assert [(e["type"], e["data"]["code"]) for e in cleared] == [("dtc.cleared", "P0562")]
    assert cleared[0]["data"]["freeze_frame"] == frame  # the frame of when it was set
    assert model.signals()["Vehicle.Diagnostics.DTCList"] == []
    assert monitor.active == ()


def test_a_stuck_thermostat_sets_p0128_after_fifteen_minutes() -> None:
    model = fresh(Powertrain.ICE, thermostat_stuck_open=True, ambient_c=5.0)
    monitor = DtcMonitor(model)
    model.start_engine()
    raised_at = None
    for second in range(1800):
        tick(model, speed=60.0)
        if monitor.step():
            raised_at = second
            break
    assert raised_at is not None and raised_at >= 899
    assert [d.code for d in monitor.active] == ["P0128"]
    coolant = monitor.active[0].freeze_frame[
        "Vehicle.Powertrain.CombustionEngine.EngineCoolant.Temperature"
    ]
    assert isinstance(coolant, float) and coolant < 71.0
    model.state.thermostat_stuck_open = False  # repaired
    events = []
    for _ in range(1800):
        tick(model, speed=60.0)
        events += monitor.step()
    assert [(e["type"], e["data"]["code"]) for e in events] == [("dtc.cleared", "P0128")]


def test_a_healthy_engine_sets_no_code() -> None:
    model = fresh(Powertrain.ICE, lv_health=1.0, lv_soc=1.0)
    monitor = DtcMonitor(model)
    model.start_engine()
    for _ in range(3600):
        tick(model, speed=80.0)
        assert monitor.step() == []


def test_misfire_episodes_set_and_clear_their_cylinder_code() -> None:
    model = fresh(Powertrain.HYBRID)
    monitor = DtcMonitor(model)
    model.start_engine()
    model.state.soc_pct = 10.0  # the engine runs to hold the charge
    model.state.misfire_cylinder, model.state.misfire_left_s = 3, 30.0
    tick(model, speed=50.0)
    assert [e["data"]["code"] for e in monitor.step()] == ["P0303"]
    events = []
    for _ in range(40):
        tick(model, speed=50.0)
        events += monitor.step()
    assert [(e["type"], e["data"]["code"]) for e in events] == [("dtc.cleared", "P0303")]
    model.state.misfire_cylinder, model.state.misfire_left_s = 0, 30.0
    tick(model, speed=50.0)
    assert [e["data"]["code"] for e in monitor.step()] == ["P0300"]


def test_a_loose_filler_cap_sets_p0455_until_the_next_refuel() -> None:
    model = fresh(Powertrain.ICE, fuel_cap_loose=True)
    monitor = DtcMonitor(model)
    model.start_engine()
    codes = []
    for _ in range(700):
        tick(model, speed=50.0)
        codes += [e["data"]["code"] for e in monitor.step()]
    assert codes == ["P0455"]
    model.refuel()  # NO_HAZARDS: the cap is tightened
    assert [e["type"] for e in monitor.step()] == ["dtc.cleared"]


def test_an_electric_car_has_no_engine_codes() -> None:
    model = fresh(Powertrain.BEV, thermostat_stuck_open=True, misfire_cylinder=1)
    monitor = DtcMonitor(model)
    model.start_engine()
    for _ in range(1200):
        tick(model, speed=50.0)
        assert monitor.step() == []
    model.state.traction_soh_pct = 70.0
    tick(model)
    assert [e["data"]["code"] for e in monitor.step()] == ["P0A7F"]


def test_dtc_events_are_valid_protocol_v1_events() -> None:
    model = fresh(Powertrain.ICE, lv_health=0.2, lv_soc=0.5)
    monitor = DtcMonitor(model, descriptions={"P0562": "System Voltage Low (from file)"})
    model.start_engine()
    tick(model)
    (event,) = monitor.step()
    assert event["data"]["description"] == "System Voltage Low (from file)"
    body = event_body(SeqCounter("boot1"), NOW, event["type"], event["data"])
    message = decode(Topic.EVENTS, msgspec.json.encode(body))
    assert isinstance(message, Event) and message.type == "dtc.raised"
    assert message.data["code"] == "P0562"


def test_could_raise_is_true_whenever_a_built_in_rule_would_raise() -> None:
    """The monitor's shortcut (`could_raise` False: the table is not walked) must never hide
    a code: over random states near every threshold, a rule that raises implies True."""
    rng = random.Random(3)
    specs = [PRESET_FOR[p] for p in Powertrain]
    model = fresh(Powertrain.ICE)
    s = model.state
    raised = 0
    for _ in range(50_000):
        spec = rng.choice(specs)
        s.start_reading = rng.random() < 0.3
        s.start_dip_v = rng.choice((None, rng.uniform(8.0, 11.5)))
        s.engine_running = rng.random() < 0.6
        s.engine_run_s_cycle = rng.uniform(0.0, 1200.0)
        s.coolant_c = rng.uniform(20.0, 120.0)
        s.misfire_cylinder = rng.randrange(-1, 5)
        s.catalyst_efficiency = rng.uniform(0.7, 1.0)
        s.vacuum_leak = rng.random() < 0.2
        s.fuel_cap_loose = rng.random() < 0.2
        s.traction_soh_pct = rng.uniform(70.0, 100.0)
        fires = any(r.raised(spec, s) for r in DTC_RULES if spec.powertrain in r.powertrains)
        raised += fires
        assert could_raise(spec, s) or not fires
    assert raised > 1000  # the states did reach the thresholds


def test_the_built_in_codes_are_real_generic_obd_codes() -> None:
    if not OBD_CODES.exists():
        pytest.skip(f"{OBD_CODES} is not here")
    codes = load_dtc_descriptions(OBD_CODES)
    assert len(codes) > 2000
    for rule in DTC_RULES:
        assert codes[rule.code] == rule.description, rule.code
    assert len({r.code for r in DTC_RULES}) == len(DTC_RULES)


def test_loading_descriptions_normalises_and_reports_bad_files(tmp_path: Path) -> None:
    good = tmp_path / "codes.json"
    good.write_text(
        '[{"Code": "P0301", "Description": " Cylinder 1  Misfire Detected"},'
        ' {"Code": "P0000/SAE", "Description": "Reserved"}, {"Code": "P340A,",'
        ' "Description": "Something"}, {"Code": "nonsense", "Description": "x"}, 7]'
    )
    assert load_dtc_descriptions(good) == {
        "P0301": "Cylinder 1 Misfire Detected",
        "P0000": "Reserved",
        "P340A": "Something",
    }
    (tmp_path / "object.json").write_text("{}")
    (tmp_path / "broken.json").write_text("[")
    for name in ("missing.json", "object.json", "broken.json"):
        with pytest.raises(ConfigurationError):
            load_dtc_descriptions(tmp_path / name)


# --- fault plan ------------------------------------------------------------------------------


def test_outages_follow_the_rate_and_last_thirty_seconds_to_fifteen_minutes() -> None:
    plan = FaultPlan(random.Random(4), offline_rate_per_h=3.0)
    online_s, durations, current = 0.0, [], 0
    for _ in range(400_000):
        if plan.online(1.0):
            online_s += 1
            if current:
                durations.append(current)
                current = 0
        else:
            current += 1
    assert plan.outages / (online_s / 3600) == pytest.approx(3.0, rel=0.15)
    assert min(durations) >= 29 and max(durations) <= 900
    assert min(durations) < 60 and max(durations) > 600  # tunnels and garages


@pytest.mark.parametrize("name", ["duplicate", "reorder", "bad_input"])
def test_per_message_faults_follow_their_rates(name: str) -> None:
    def rate(value: float) -> dict[str, Any]:
        return {f"{name}_rate": value}

    plan = FaultPlan(random.Random(2), **rate(0.05))
    hits = sum(getattr(plan, name)() for _ in range(40_000))
    assert hits / 40_000 == pytest.approx(0.05, rel=0.1)
    quiet = FaultPlan(random.Random(2), **rate(0.0))
    assert not any(getattr(quiet, name)() for _ in range(1000))


def test_clock_skew_is_constant_per_car_and_inside_the_platforms_tolerance() -> None:
    skews = [FaultPlan(random.Random(s), clock_skew_s=MAX_CLOCK_SKEW_S).skew_ms for s in range(500)]
    assert max(abs(s) for s in skews) <= MAX_CLOCK_SKEW_S * 1000 < FUTURE_TOLERANCE_MS
    assert min(skews) < -100_000 and max(skews) > 100_000
    plan = FaultPlan(random.Random(1), clock_skew_s=60)
    assert plan.vehicle_ms(NOW) - NOW == plan.vehicle_ms(NOW + 5000) - NOW - 5000 == plan.skew_ms
    with pytest.raises(ValueError, match="clock_skew_s"):
        FaultPlan(random.Random(1), clock_skew_s=301)
    with pytest.raises(ValueError, match="duplicate_rate"):
        FaultPlan(random.Random(1), duplicate_rate=1.5)
    with pytest.raises(ValueError, match="bad input"):
        FaultPlan(random.Random(1), bad_reasons=(Reason.DUPLICATE,))


# --- bad input -------------------------------------------------------------------------------


def good_body(seq: int, *, samples: int = 0) -> dict[str, Any]:
    """A valid telemetry body of a simulated car, inline or as a batch of samples."""
    model = fresh(Powertrain.HYBRID)
    signals: dict[str, Any] = {
        **model.signals(),
        "Vehicle.Speed": 42.0,
        "Vehicle.CurrentLocation.Latitude": 43.7384,
        "Vehicle.CurrentLocation.Longitude": 7.4246,
    }
    if not samples:
        return {"v": 1, "sid": "boot1", "seq": seq, "ts": NOW - 1000, "signals": signals}
    batch = [{"ts": NOW - 1000 * (samples - i), "signals": signals} for i in range(samples)]
    return {"v": 1, "sid": "boot1", "seq": seq, "samples": batch}


def platform_reasons(payload: bytes, catalog: Catalog = CATALOG) -> list[str]:
    """What the platform's decoder and catalog say about a telemetry payload."""
    try:
        message = decode(Topic.TELEMETRY, payload)
    except ProtocolError as exc:
        return [exc.reason]
    assert isinstance(message, Telemetry)
    found: list[str] = []
    for sample in samples_of(message):
        if sample.ts > NOW + FUTURE_TOLERANCE_MS:
            return [Reason.FUTURE_TIMESTAMP]
        if sample.ts < EARLIEST_TS:
            return [Reason.INVALID_TIMESTAMP]
        for path, value in sample.signals.items():
            result = catalog.check(path, value)
            if not result.ok:
                found.append(str(result.rejection))
    return found


def test_good_bodies_pass_the_platform() -> None:
    assert platform_reasons(msgspec.json.encode(good_body(1))) == []
    assert platform_reasons(msgspec.json.encode(good_body(1, samples=3))) == []


@pytest.mark.parametrize("reason", BAD_INPUT_REASONS)
def test_each_kind_of_bad_input_is_refused_for_the_reason_claimed(reason: Reason) -> None:
    catalogs = [CATALOG]
    if VSS_RELEASE.exists():
        catalogs.append(Catalog.builtin(VSS_RELEASE))  # still bad with every VSS leaf known
    rng = random.Random(reason)
    for attempt in range(60):
        body = good_body(attempt, samples=attempt % 3)
        payload, claimed = corrupt(body, rng, (reason,))
        assert claimed is reason
        for catalog in catalogs:
            assert platform_reasons(payload, catalog) == [reason], payload[:200]


def test_bad_input_becomes_exactly_one_dead_letter_in_the_ingest_pipeline() -> None:
    store = MemoryTelemetry({VIN: VehicleRef(1, "alpha")})
    pipeline = Pipeline(
        store,
        CATALOG,
        Metrics(),
        max_payload_bytes=131_072,
        max_future_skew_ms=FUTURE_TOLERANCE_MS,
    )
    plan = FaultPlan(random.Random(8), bad_input_rate=1.0)
    counter = SeqCounter("boot1")
    claimed: Counter[str] = Counter()
    messages = []
    for i in range(200):
        body = good_body(counter.take(), samples=i % 2)
        payload, reason = plan.corrupt(body)
        claimed[reason] += 1
        messages.append(Inbound(f"vehicles/{VIN}/telemetry", payload, NOW))
    good = telemetry_body(counter, NOW - 500, {"Vehicle.Speed": 10.0})
    messages.append(Inbound(f"vehicles/{VIN}/telemetry", msgspec.json.encode(good), NOW))
    batch = pipeline.run(messages, NOW)
    assert Counter(d.reason for d in batch.out.dead_letters) == claimed
    assert set(claimed) == set(BAD_INPUT_REASONS)
    assert [(f.ts, list(f.values.values())) for f in batch.out.history] == [(NOW - 500, [10.0])]


# --- store and forward -----------------------------------------------------------------------


def test_store_and_forward_flushes_everything_in_order_with_increasing_seq() -> None:
    buffer = StoreAndForward()
    model = fresh(Powertrain.BEV)
    expected: list[tuple[int, str]] = []
    for second in range(900):  # a 15-minute garage stay at 1 Hz
        ts = NOW - 900_000 + second * 1000
        buffer.add_sample(ts, model.signals())
        expected.append((ts, "sample"))
        if second in (100, 101, 640):
            buffer.add_event(ts, "dtc.raised", {"code": "P0562"})
            expected.append((ts, "dtc.raised"))
    assert len(buffer) == len(expected) and list(buffer) == expected
    counter = SeqCounter("boot2", start=17)
    messages = buffer.flush(counter, max_samples_per_message=60)
    assert len(buffer) == 0 and buffer.dropped == 0
    seqs = [m.body["seq"] for m in messages]
    assert seqs == list(range(17, 17 + len(messages)))
    assert counter.next_seq == seqs[-1] + 1
    replayed: list[tuple[int, str]] = []
    for message in messages:
        payload = message.payload()
        assert len(payload) < 131_072
        decoded = decode(message.kind, payload)
        assert message.body["sid"] == "boot2"
        if isinstance(decoded, Telemetry):
            assert 1 <= len(samples_of(decoded)) <= 60
            replayed += [(s.ts, "sample") for s in samples_of(decoded)]
            assert platform_reasons(payload) == []
        else:
            assert isinstance(decoded, Event)
            replayed.append((decoded.ts, decoded.type))
    assert replayed == expected  # nothing lost, nothing reordered
    assert len(messages) < 40  # batched (~120 kB each), not one message per sample
    assert buffer.flush(counter) == []


def test_flushed_batches_respect_the_payload_size() -> None:
    buffer = StoreAndForward()
    signals = dict(fresh(Powertrain.HYBRID).signals())
    for second in range(500):
        buffer.add_sample(NOW + second, signals)
    messages = buffer.flush(SeqCounter("b"), 500, max_bytes=20_000)
    assert all(len(m.payload()) <= 20_000 for m in messages)
    assert sum(len(m.body["samples"]) for m in messages) == 500
    ts = [s["ts"] for m in messages for s in m.body["samples"]]
    assert all(a < b for a, b in pairwise(ts))


def test_a_full_buffer_drops_the_oldest_and_counts_it() -> None:
    buffer = StoreAndForward(capacity=3)
    for second in range(5):
        buffer.add_sample(second, {"Vehicle.Speed": 1.0})
    assert buffer.dropped == 2 and [ts for ts, _ in buffer] == [2, 3, 4]


def test_a_sample_payload_is_the_encoded_single_sample_body() -> None:
    """`SeqCounter.sample_payload` (a template) gives the bytes of encoding the body."""
    rng = random.Random(5)
    values: list[Any] = [0.1, -0.0, 1e-7, 49.4123456, 12_345, True, "ON", ["P0301"], [], 1e21]
    for sid in ("boot-1", 'q"uote\\', "x" * 64):
        fast = SeqCounter(sid, start=rng.randrange(10**6))
        plain = SeqCounter(sid, start=fast.next_seq)
        for _ in range(200):
            ts = rng.randrange(-(10**13), 10**13)
            signals = {f"Vehicle.S{i}": rng.choice(values) for i in range(rng.randrange(0, 6))}
            expected = msgspec.json.encode(single_sample_body(plain, ts, signals))
            assert fast.sample_payload(ts, signals) == expected
            body = numbered_sample_body(fast, fast.next_seq - 1, ts, signals)
            assert msgspec.json.encode(body) == expected
        assert fast.next_seq == plain.next_seq


def test_seq_counter_checks_its_session_id() -> None:
    counter = SeqCounter("a1")
    assert [counter.take() for _ in range(3)] == [0, 1, 2]
    for bad in ("", "has space", "x" * 65):
        with pytest.raises(ValueError, match="sid"):
            SeqCounter(bad)
    with pytest.raises(ValueError, match="seq"):
        SeqCounter("a", start=-1)
