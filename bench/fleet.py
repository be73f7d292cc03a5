"""The simulated fleet of the benchmark: VINs, protocol-v1 telemetry payloads, publishers.

Publishers run in separate processes (so their CPU is not the platform's and their GIL is
their own). Each is one paho client logged in as the bench's *fleet gateway*: a dynsec
client that may publish `vehicles/+/telemetry`, i.e. few connections publishing for many
VINs. Every VIN keeps its own boot session `sid` and an increasing `seq`, and every message
of a VIN carries a distinct `ts`, so nothing is a duplicate and every history row is new.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.queues import Queue
from typing import Any

import msgspec
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from autocloud.domain.catalog import Catalog

# European WMI (WVW, no mandatory check digit), model year code N, plant W, serial number.
_VIN_HEAD = "WVWZZZ1KZN"
_PLANTS = "WXYZABCDEF"
SERIALS_PER_PLANT = 1_000_000


def vin_of(index: int) -> str:
    """A valid, distinct 17-character VIN for every index below 10 million."""
    plant, serial = divmod(index, SERIALS_PER_PLANT)
    return f"{_VIN_HEAD}{_PLANTS[plant]}{serial:06d}"


# Twenty real leaves of the platform catalog (VSS 6.0) and a value maker for each that stays
# inside the signal's datatype, range and allowed values. `k` is the message counter of the VIN.
_Maker = Callable[[int, int], Any]
SIGNALS: tuple[tuple[str, _Maker], ...] = (
    ("Vehicle.Speed", lambda i, k: float((i + k) % 180) + 0.5),
    ("Vehicle.IsMoving", lambda i, k: (i + k) % 5 != 0),
    ("Vehicle.TraveledDistance", lambda i, k: 1_000_000 + i * 7 + k * 13),
    ("Vehicle.Acceleration.Longitudinal", lambda i, k: ((i + 3 * k) % 40 - 20) / 10),
    ("Vehicle.CurrentLocation.Latitude", lambda i, k: 48.0 + (i % 1000) / 1000 + k * 1e-5),
    ("Vehicle.CurrentLocation.Longitude", lambda i, k: 11.0 + (i % 997) / 1000 + k * 1e-5),
    ("Vehicle.CurrentLocation.Altitude", lambda i, k: 500.0 + (i + k) % 100),
    ("Vehicle.CurrentLocation.Heading", lambda i, k: float((i * 7 + k) % 360)),
    ("Vehicle.CurrentLocation.GNSSReceiver.FixType", lambda i, k: "THREE_D"),
    ("Vehicle.LowVoltageSystemState", lambda i, k: "ON"),
    ("Vehicle.LowVoltageBattery.CurrentVoltage", lambda i, k: 12.0 + (i + k) % 20 / 10),
    ("Vehicle.Powertrain.TractionBattery.StateOfCharge.Current", lambda i, k: float((i + k) % 100)),
    ("Vehicle.Powertrain.TractionBattery.CurrentPower", lambda i, k: float((i * 3 + k) % 150_000)),
    ("Vehicle.Powertrain.TractionBattery.Temperature.Average", lambda i, k: 20.0 + (i + k) % 15),
    ("Vehicle.Powertrain.Range", lambda i, k: 100_000 + (i * 11 + k) % 300_000),
    ("Vehicle.Chassis.Axle.Row1.Wheel.Left.Tire.Pressure", lambda i, k: 230 + (i + k) % 30),
    ("Vehicle.Chassis.Axle.Row1.Wheel.Right.Tire.Pressure", lambda i, k: 231 + (i + k) % 30),
    ("Vehicle.Cabin.Door.Row1.DriverSide.IsLocked", lambda i, k: (i + k) % 2 == 0),
    ("Vehicle.Cabin.HVAC.AmbientAirTemperature", lambda i, k: 21.0 + (i + k) % 5),
    ("Vehicle.Exterior.AirTemperature", lambda i, k: -5.0 + (i + k) % 35),
)

_encode = msgspec.json.Encoder().encode


def payload(vin_index: int, sid: str, seq: int, ts: int, signals: int) -> bytes:
    """One protocol-v1 telemetry message with the first `signals` signals of `SIGNALS`."""
    body = {
        "v": 1,
        "sid": sid,
        "seq": seq,
        "ts": ts,
        "signals": {path: make(vin_index, seq) for path, make in SIGNALS[:signals]},
    }
    return _encode(body)


def sid_of(vin_index: int) -> str:
    """The boot session of a VIN for the whole run (seq keeps increasing across phases)."""
    return f"bench-{vin_index}"


def check_signals_valid(count: int) -> None:
    """Refuse to run if any value the fleet sends would be dead-lettered by the catalog."""
    if not 1 <= count <= len(SIGNALS):
        raise ValueError(f"signals per message must be 1..{len(SIGNALS)}, got {count}")
    catalog = Catalog.builtin()
    for i in (0, 1, 999, 12_345):
        for k in (0, 1, 50, 10_000):
            for path, make in SIGNALS[:count]:
                result = catalog.check(path, make(i, k))
                if result.rejection is not None:
                    raise ValueError(
                        f"bench signal {path}={make(i, k)!r} is invalid: {result.detail}"
                    )


@dataclass(frozen=True, slots=True)
class Gateway:
    """Where the fleet gateway connects and with which credential."""

    host: str
    port: int
    username: str
    password: str


@dataclass(frozen=True, slots=True)
class PublishJob:
    """What one publisher process sends.

    VINs `first..first+count-1`, `rounds` messages each, round-robin over the VINs (so a VIN's
    consecutive messages are far apart), message k of a VIN having seq `seq_start + k`.
    `rate` is this process's pace in messages/s (0 = as fast as the broker acknowledges).
    With `duration_s` set, rounds repeat until that time is up instead (latency phase), and
    `ts` is the exact send time in ms, which the latency probe subtracts from arrival time.
    """

    gateway: Gateway
    client_id: str
    first: int
    count: int
    rounds: int
    seq_start: int
    signals: int
    rate: float = 0.0
    duration_s: float | None = None
    window: int = 2000
    start_at: float = 0.0  # wall-clock time (time.time()) at which to begin, to align processes


@dataclass(frozen=True, slots=True)
class PublishResult:
    """What one publisher did; times are `time.time()` seconds."""

    client_id: str
    sent: int
    acked: int
    first_send: float
    last_send: float
    last_ack: float
    rounds_done: int
    error: str | None = None
    cpu_s: float = 0.0  # CPU time of the publisher process (all its threads)


class _Acks:
    """Counts PUBACKs on paho's network thread."""

    def __init__(self) -> None:
        self.count = 0
        self.last = 0.0
        self.done = threading.Event()
        self.target = math.inf

    def on_publish(self, *_args: object) -> None:
        self.count += 1
        self.last = time.time()
        if self.count >= self.target:
            self.done.set()


def publish(job: PublishJob) -> PublishResult:
    """Run one publisher to completion (in the calling process) and say what it did."""
    acks = _Acks()
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2, client_id=job.client_id, protocol=mqtt.MQTTv311
    )
    client.username_pw_set(job.gateway.username, job.gateway.password)
    # 0 = no paho limit: paho then skips `_update_inflight`, which scans every outgoing
    # message on each PUBACK (O(window) per message; 3.6 of 5.3 s in a 20k-message profile).
    # The publish loop keeps at most `job.window` messages unacknowledged itself.
    client.max_inflight_messages_set(0)
    client.max_queued_messages_set(0)
    client.on_publish = acks.on_publish
    connected = threading.Event()
    client.on_connect = lambda *_a: connected.set()
    client.connect(job.gateway.host, job.gateway.port, keepalive=60)
    client.loop_start()
    try:
        if not connected.wait(10):
            return PublishResult(job.client_id, 0, 0, 0, 0, 0, 0, "no CONNACK within 10 s")
        return _publish_loop(job, client, acks)
    finally:
        client.disconnect()
        client.loop_stop()


def _publish_loop(job: PublishJob, client: mqtt.Client, acks: _Acks) -> PublishResult:
    topics = [f"vehicles/{vin_of(job.first + j)}/telemetry" for j in range(job.count)]
    sids = [sid_of(job.first + j) for j in range(job.count)]
    delay = job.start_at - time.time()
    if delay > 0:
        time.sleep(delay)
    started = time.time()
    deadline = started + job.duration_s if job.duration_s is not None else math.inf
    rounds = job.rounds if job.duration_s is None else 1 << 40
    sent = 0
    last_ts = 0
    first_send = last_send = 0.0
    rounds_done = 0
    for r in range(rounds):
        if time.time() >= deadline:
            break
        seq = job.seq_start + r
        # A distinct ts per message of a VIN: one per round, strictly increasing.
        round_ts = max(time.time_ns() // 1_000_000, last_ts + 1)
        last_ts = round_ts
        for j in range(job.count):
            if job.rate > 0:
                ahead = started + sent / job.rate - time.time()
                if ahead > 0:
                    time.sleep(ahead)
            while sent - acks.count >= job.window:
                time.sleep(0.0005)
            ts = round_ts
            if job.duration_s is not None:  # latency mode: ts is the send time itself
                ts = max(time.time_ns() // 1_000_000, round_ts)
                last_ts = max(last_ts, ts)
            body = payload(job.first + j, sids[j], seq, ts, job.signals)
            now = time.time()
            if sent == 0:
                first_send = now
            client.publish(topics[j], body, qos=1)
            sent += 1
            last_send = now
            if time.time() >= deadline:
                break
        rounds_done += 1
    acks.target = sent
    if acks.count >= sent:
        acks.done.set()
    error = None if acks.done.wait(120) else f"only {acks.count} of {sent} PUBACKs within 120 s"
    return PublishResult(
        job.client_id,
        sent,
        acks.count,
        first_send,
        last_send,
        acks.last,
        rounds_done,
        error,
        time.process_time(),
    )


def publisher_main(job: PublishJob, results: Queue[PublishResult]) -> None:
    """Entry point of a publisher process: publish, then report through `results`."""
    try:
        results.put(publish(job))
    except Exception as exc:  # reported to the parent, which fails the phase
        results.put(PublishResult(job.client_id, 0, 0, 0, 0, 0, 0, f"{type(exc).__name__}: {exc}"))
