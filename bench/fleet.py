"""The simulated fleet of the benchmark: VINs, protocol-v1 telemetry payloads, publishers.

Publishers run in separate processes (so their CPU is not the platform's and their GIL is
their own). Each is one MQTT connection logged in as the bench's *fleet gateway*: a dynsec
client that may publish `vehicles/+/telemetry`, i.e. few connections publishing for many
VINs. Every VIN keeps its own boot session `sid` and an increasing `seq`, and every message
of a VIN carries a distinct `ts`, so nothing is a duplicate and every history row is new.

Two publisher clients, one loop (`_publish_loop`): `lean` (the default; `bench/lean_pub.py`,
one socket, ~10x less CPU per message than paho here) and `paho` (paho-mqtt 2, what every
ingest result before 2026-11-22 11:30 UTC was measured with). Payloads are built by code
generated from `SIGNAL_EXPRESSIONS` (`payload_encoder`), checked at start to give exactly
the bytes of the plain reference (`payload`).
"""

from __future__ import annotations

import math
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import msgspec

from bench.lean_pub import FLUSH_BYTES, MAX_WINDOW, LeanPublisher, PublisherLost, topic_bytes

if TYPE_CHECKING:
    import paho.mqtt.client as mqtt

_REPO = Path(__file__).resolve().parent.parent

# European WMI (WVW, no mandatory check digit), model year code N, plant W, serial number.
_VIN_HEAD = "WVWZZZ1KZN"
_PLANTS = "WXYZABCDEF"
SERIALS_PER_PLANT = 1_000_000


def vin_of(index: int) -> str:
    """A valid, distinct 17-character VIN for every index below 10 million."""
    plant, serial = divmod(index, SERIALS_PER_PLANT)
    return f"{_VIN_HEAD}{_PLANTS[plant]}{serial:06d}"


# Twenty real leaves of the platform catalog (VSS 6.0) and, for each, a Python expression in
# `i` (the VIN's index) and `k` (the VIN's message counter) whose value stays inside the
# signal's datatype, range and allowed values. Expressions rather than functions so that
# `payload_encoder` can inline them (a function call per signal and a dict per message cost
# about half of the ~20 µs a message took to build).
SIGNAL_EXPRESSIONS: tuple[tuple[str, str], ...] = (
    ("Vehicle.Speed", "float((i + k) % 180) + 0.5"),
    ("Vehicle.IsMoving", "(i + k) % 5 != 0"),
    ("Vehicle.TraveledDistance", "1_000_000 + i * 7 + k * 13"),
    ("Vehicle.Acceleration.Longitudinal", "((i + 3 * k) % 40 - 20) / 10"),
    ("Vehicle.CurrentLocation.Latitude", "48.0 + (i % 1000) / 1000 + k * 1e-5"),
    ("Vehicle.CurrentLocation.Longitude", "11.0 + (i % 997) / 1000 + k * 1e-5"),
    ("Vehicle.CurrentLocation.Altitude", "500.0 + (i + k) % 100"),
    ("Vehicle.CurrentLocation.Heading", "float((i * 7 + k) % 360)"),
    ("Vehicle.CurrentLocation.GNSSReceiver.FixType", '"THREE_D"'),
    ("Vehicle.LowVoltageSystemState", '"ON"'),
    ("Vehicle.LowVoltageBattery.CurrentVoltage", "12.0 + (i + k) % 20 / 10"),
    ("Vehicle.Powertrain.TractionBattery.StateOfCharge.Current", "float((i + k) % 100)"),
    ("Vehicle.Powertrain.TractionBattery.CurrentPower", "float((i * 3 + k) % 150_000)"),
    ("Vehicle.Powertrain.TractionBattery.Temperature.Average", "20.0 + (i + k) % 15"),
    ("Vehicle.Powertrain.Range", "100_000 + (i * 11 + k) % 300_000"),
    ("Vehicle.Chassis.Axle.Row1.Wheel.Left.Tire.Pressure", "230 + (i + k) % 30"),
    ("Vehicle.Chassis.Axle.Row1.Wheel.Right.Tire.Pressure", "231 + (i + k) % 30"),
    ("Vehicle.Cabin.Door.Row1.DriverSide.IsLocked", "(i + k) % 2 == 0"),
    ("Vehicle.Cabin.HVAC.AmbientAirTemperature", "21.0 + (i + k) % 5"),
    ("Vehicle.Exterior.AirTemperature", "-5.0 + (i + k) % 35"),
)

_Maker = Callable[[int, int], Any]


def _maker(expression: str) -> _Maker:
    maker: _Maker = eval(f"lambda i, k: {expression}")  # bench constants above, not input
    return maker


SIGNALS: tuple[tuple[str, _Maker], ...] = tuple(
    (path, _maker(expression)) for path, expression in SIGNAL_EXPRESSIONS
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


Encoder = Callable[[int, str, int, int], bytes]  # (vin index, sid, seq, ts) -> payload


def payload_encoder(signals: int) -> Encoder:
    """A function making exactly the bytes of `payload` (for `signals` signals), ~2x cheaper:
    generated code computes the values inline (no call per signal) into a msgspec Struct whose
    fields are renamed to the signal paths, so the encoding is msgspec's own, in C."""
    chosen = SIGNAL_EXPRESSIONS[:signals]
    fields = [(f"s{n}", type(_maker(expression)(0, 0))) for n, (_, expression) in enumerate(chosen)]
    signal_struct = msgspec.defstruct(
        "Signals", fields, rename={f"s{n}": path for n, (path, _) in enumerate(chosen)}
    )
    message = msgspec.defstruct(
        "Telemetry",
        [("v", int), ("sid", str), ("seq", int), ("ts", int), ("signals", signal_struct)],
    )
    values = ", ".join(expression for _, expression in chosen)
    source = (
        "def encode(i, sid, k, ts):\n"
        f"    return _encode(_Message(1, sid, k, ts, _Signals({values})))\n"
    )
    namespace: dict[str, Any] = {
        "_encode": msgspec.json.Encoder().encode,
        "_Message": message,
        "_Signals": signal_struct,
    }
    exec(compile(source, f"<bench payload encoder, {signals} signals>", "exec"), namespace)
    encoder: Encoder = namespace["encode"]
    return encoder


def check_signals_valid(count: int) -> None:
    """Refuse to run if any value the fleet sends would be dead-lettered by the catalog, or
    if the generated encoder's messages differ from the reference encoding."""
    if not 1 <= count <= len(SIGNALS):
        raise ValueError(f"signals per message must be 1..{len(SIGNALS)}, got {count}")
    from autocloud.domain.catalog import Catalog  # only the parent checks: publishers skip it

    catalog = Catalog.builtin()
    fast = payload_encoder(count)
    for i in (0, 1, 999, 12_345):
        for k in (0, 1, 50, 10_000):
            for path, make in SIGNALS[:count]:
                result = catalog.check(path, make(i, k))
                if result.rejection is not None:
                    raise ValueError(
                        f"bench signal {path}={make(i, k)!r} is invalid: {result.detail}"
                    )
            ts = 1_700_000_000_000 + k
            if fast(i, sid_of(i), k, ts) != payload(i, sid_of(i), k, ts, count):
                raise ValueError(f"generated payload encoder differs at i={i}, k={k}")


@dataclass(frozen=True, slots=True)
class Gateway:
    """Where the fleet gateway connects and with which credential."""

    host: str
    port: int
    username: str
    password: str


CLIENTS = ("lean", "paho")


@dataclass(frozen=True, slots=True)
class PublishJob:
    """What one publisher process sends.

    VINs `first..first+count-1`, `rounds` messages each, round-robin over the VINs (so a VIN's
    consecutive messages are far apart), message k of a VIN having seq `seq_start + k`.
    `rate` is this process's pace in messages/s (0 = as fast as the broker acknowledges).
    With `duration_s` set, rounds repeat until that time is up instead (latency phase), and
    `ts` is the exact send time in ms, which the latency probe subtracts from arrival time.
    At most `window` messages are unacknowledged at any time. `client` is the MQTT client
    (`lean` or `paho`, see the module docstring).
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
    client: str = "lean"


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
    cpu_s: float = 0.0  # CPU time of the publisher process (all its threads), start-up included
    send_cpu_s: float = 0.0  # CPU time from the first send to the last PUBACK (all threads)
    window_wait_s: float = 0.0  # time spent with `window` messages unacknowledged (throttled)


class _Sender(Protocol):
    """What `_publish_loop` needs of an MQTT client."""

    @property
    def acked(self) -> int: ...

    @property
    def last_ack(self) -> float: ...

    def wait_until(self, when: float) -> None:
        """Return at wall-clock time `when` (serving the connection meanwhile)."""
        ...

    def wait_for_window(self, sent: int, window: int) -> None:
        """Return once fewer than `window` of the `sent` messages are unacknowledged."""
        ...

    def send(self, topic: int, body: bytes) -> None:
        """Publish `body` at QoS 1 on the job's `topic`-th topic."""
        ...

    def finish(self, sent: int, timeout_s: float) -> bool:
        """Write everything; wait until all `sent` messages are acknowledged."""
        ...


def publish(job: PublishJob) -> PublishResult:
    """Run one publisher to completion (in the calling process) and say what it did."""
    if job.client == "lean":
        return _publish_lean(job)
    if job.client == "paho":
        return _publish_paho(job)
    raise ValueError(f"unknown publisher client {job.client!r} (one of {CLIENTS})")


def _topics(job: PublishJob) -> list[str]:
    return [f"vehicles/{vin_of(job.first + j)}/telemetry" for j in range(job.count)]


# --- lean: bench/lean_pub.py ---------------------------------------------------------------


class _LeanSender:
    """`LeanPublisher` behind `_Sender`. Unpaced, it writes every ~64 KiB. Paced, it works in
    quanta of `QUANTUM_S`: a message due within the quantum is queued at once (up to one
    quantum early) and the queue is written once a quantum, so a message leaves at most one
    quantum after its `ts` was taken. One write, one look for PUBACKs and one sleep per
    quantum instead of a write and a wake-up per message (waiting in `select` woke the
    process for every PUBACK: ~110 µs of CPU per paced message against ~20 µs unpaced)."""

    QUANTUM_S = 0.002

    def __init__(self, pub: LeanPublisher, topics: list[str], paced: bool) -> None:
        self.pub = pub
        self.topics = [topic_bytes(t) for t in topics]
        self.paced = paced

    @property
    def acked(self) -> int:
        return self.pub.acked

    @property
    def last_ack(self) -> float:
        return self.pub.last_ack

    def wait_until(self, when: float) -> None:
        pub = self.pub
        left = when - time.time()
        if left > self.QUANTUM_S:  # else: due within this quantum, queue it now
            pub.flush()
            pub.poll(0.0)  # PUBACKs so far, without waking for each one that arrives
            time.sleep(left)  # then every message due in the next quantum goes at once

    def wait_for_window(self, sent: int, window: int) -> None:
        pub = self.pub
        while pub.pending >= window:
            pub.flush()
            pub.poll(0.05)

    def send(self, topic: int, body: bytes) -> None:
        pub = self.pub
        pub.publish(self.topics[topic], body)
        if pub.buffered >= FLUSH_BYTES or (
            self.paced and time.monotonic() - pub.flushed_at >= self.QUANTUM_S
        ):
            pub.flush()
            pub.read()

    def finish(self, sent: int, timeout_s: float) -> bool:
        return self.pub.wait_acked(timeout_s)


def _publish_lean(job: PublishJob) -> PublishResult:
    if not 0 < job.window <= MAX_WINDOW:
        raise ValueError(f"window must be 1..{MAX_WINDOW}, got {job.window}")
    gw = job.gateway
    pub = LeanPublisher(gw.host, gw.port, job.client_id, gw.username, gw.password)
    try:
        pub.connect(10.0)
    except PublisherLost as exc:
        return PublishResult(job.client_id, 0, 0, 0, 0, 0, 0, str(exc), time.process_time())
    sender = _LeanSender(pub, _topics(job), paced=job.rate > 0)
    try:
        return _publish_loop(job, sender)
    except PublisherLost as exc:
        return PublishResult(
            job.client_id, pub.sent, pub.acked, 0, 0, pub.last_ack, 0, str(exc), time.process_time()
        )
    finally:
        pub.close()


# --- paho (the publisher of the results before 2026-11-22 11:30 UTC) --------------------------


class _PahoSender:
    """A paho client behind `_Sender`: PUBACKs counted on paho's network thread."""

    def __init__(self, client: mqtt.Client, topics: list[str]) -> None:
        self.client = client
        self.topics = topics
        self.count = 0
        self.last = 0.0
        self.done = threading.Event()
        self.target = math.inf

    @property
    def acked(self) -> int:
        return self.count

    @property
    def last_ack(self) -> float:
        return self.last

    def on_publish(self, *_args: object) -> None:
        self.count += 1
        self.last = time.time()
        if self.count >= self.target:
            self.done.set()

    def wait_until(self, when: float) -> None:
        ahead = when - time.time()
        if ahead > 0:
            time.sleep(ahead)

    def wait_for_window(self, sent: int, window: int) -> None:
        while sent - self.count >= window:
            time.sleep(0.0005)

    def send(self, topic: int, body: bytes) -> None:
        self.client.publish(self.topics[topic], body, qos=1)

    def finish(self, sent: int, timeout_s: float) -> bool:
        self.target = sent
        if self.count >= sent:
            self.done.set()
        return self.done.wait(timeout_s)


def _publish_paho(job: PublishJob) -> PublishResult:
    import paho.mqtt.client as mqtt  # imported here: the lean publisher processes do not need it
    from paho.mqtt.enums import CallbackAPIVersion

    client = mqtt.Client(
        CallbackAPIVersion.VERSION2, client_id=job.client_id, protocol=mqtt.MQTTv311
    )
    sender = _PahoSender(client, _topics(job))
    client.username_pw_set(job.gateway.username, job.gateway.password)
    # 0 = no paho limit: paho then skips `_update_inflight`, which scans every outgoing
    # message on each PUBACK (O(window) per message; 3.6 of 5.3 s in a 20k-message profile).
    # The publish loop keeps at most `job.window` messages unacknowledged itself.
    client.max_inflight_messages_set(0)
    client.max_queued_messages_set(0)
    client.on_publish = sender.on_publish
    connected = threading.Event()
    client.on_connect = lambda *_a: connected.set()
    client.connect(job.gateway.host, job.gateway.port, keepalive=60)
    client.loop_start()
    try:
        if not connected.wait(10):
            return PublishResult(job.client_id, 0, 0, 0, 0, 0, 0, "no CONNACK within 10 s")
        return _publish_loop(job, sender)
    finally:
        client.disconnect()
        client.loop_stop()


# --- the loop both clients share -----------------------------------------------------------


def _publish_loop(job: PublishJob, sender: _Sender) -> PublishResult:
    encode = payload_encoder(job.signals)
    sids = [sid_of(job.first + j) for j in range(job.count)]
    sender.wait_until(job.start_at)
    cpu_at_start = time.process_time()
    started = time.time()
    deadline = started + job.duration_s if job.duration_s is not None else math.inf
    rounds = job.rounds if job.duration_s is None else 1 << 40
    sent = 0
    last_ts = 0
    first_send = last_send = 0.0
    rounds_done = 0
    window_wait = 0.0
    for r in range(rounds):
        if time.time() >= deadline:
            break
        seq = job.seq_start + r
        # A distinct ts per message of a VIN: one per round, strictly increasing.
        round_ts = max(time.time_ns() // 1_000_000, last_ts + 1)
        last_ts = round_ts
        for j in range(job.count):
            if job.rate > 0:
                sender.wait_until(started + sent / job.rate)
            if sent - sender.acked >= job.window:
                blocked = time.monotonic()
                sender.wait_for_window(sent, job.window)
                window_wait += time.monotonic() - blocked
            ts = round_ts
            if job.duration_s is not None:  # latency mode: ts is the send time itself
                ts = max(time.time_ns() // 1_000_000, round_ts)
                last_ts = max(last_ts, ts)
            body = encode(job.first + j, sids[j], seq, ts)
            now = time.time()
            if sent == 0:
                first_send = now
            sender.send(j, body)
            sent += 1
            last_send = now
            if time.time() >= deadline:
                break
        rounds_done += 1
    ok = sender.finish(sent, 120)
    error = None if ok else f"only {sender.acked} of {sent} PUBACKs within 120 s"
    cpu = time.process_time()
    return PublishResult(
        job.client_id,
        sent,
        sender.acked,
        first_send,
        last_send,
        sender.last_ack,
        rounds_done,
        error,
        cpu,
        cpu - cpu_at_start,
        round(window_wait, 3),
    )


class PublisherProcess:
    """One publisher process: `python -m bench.fleet`, the job in on stdin, the result out
    on stdout (JSON). A plain subprocess rather than multiprocessing's `spawn`, which would
    import the parent's main module (the ingest CLI, SQLAlchemy, the platform) in every
    publisher: ~1.5 s of CPU each, on a machine the bench is measuring."""

    def __init__(self, job: PublishJob) -> None:
        self.job = job
        self.popen = subprocess.Popen(
            [sys.executable, "-m", "bench.fleet"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            cwd=_REPO,
        )
        stdin, self.popen.stdin = self.popen.stdin, None  # so `communicate` leaves it alone
        assert stdin is not None
        stdin.write(msgspec.json.encode(job))
        stdin.close()

    def is_alive(self) -> bool:
        return self.popen.poll() is None

    def result(self, timeout_s: float) -> PublishResult:
        """Wait for the process and decode its report (an error result if it has none)."""
        try:
            out, _ = self.popen.communicate(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait()
            return _failed(self.job, f"no result within {timeout_s:g} s")
        try:
            return msgspec.json.decode(out, type=PublishResult)
        except msgspec.DecodeError:
            return _failed(self.job, f"exited with {self.popen.returncode} and no result")


def _failed(job: PublishJob, why: str) -> PublishResult:
    return PublishResult(job.client_id, 0, 0, 0, 0, 0, 0, why)


def publisher_main() -> None:
    """Entry point of a publisher process: a `PublishJob` on stdin, its result on stdout."""
    job = msgspec.json.decode(sys.stdin.buffer.read(), type=PublishJob)
    try:
        result = publish(job)
    except Exception as exc:  # reported to the parent, which fails the phase
        result = _failed(job, f"{type(exc).__name__}: {exc}")
    sys.stdout.buffer.write(msgspec.json.encode(result))
    sys.stdout.flush()


def run_publishers(
    gateway: Gateway,
    vins: range,
    publishers: int,
    *,
    rounds: int,
    seq_start: int,
    signals: int,
    rate: float = 0.0,
    duration_s: float | None = None,
    tag: str,
    client: str = "lean",
    window: int = 2000,
) -> tuple[list[PublisherProcess], float]:
    """Start `publishers` processes, each with a contiguous slice of `vins`; they all begin
    sending at the returned wall-clock time (after they connected)."""
    start_at = time.time() + 3.0
    per = -(-len(vins) // publishers)
    processes: list[PublisherProcess] = []
    for p in range(publishers):
        first = vins.start + p * per
        count = min(per, vins.stop - first)
        if count <= 0:
            continue
        job = PublishJob(
            gateway=gateway,
            client_id=f"bench-{tag}-{p}",
            first=first,
            count=count,
            rounds=rounds,
            seq_start=seq_start,
            signals=signals,
            rate=rate * count / len(vins),
            duration_s=duration_s,
            window=window,
            start_at=start_at,
            client=client,
        )
        processes.append(PublisherProcess(job))
    return processes, start_at


def collect(processes: list[PublisherProcess], timeout_s: float = 600.0) -> list[PublishResult]:
    """The publishers' reports (raises if one failed)."""
    deadline = time.monotonic() + timeout_s
    out = [p.result(max(1.0, deadline - time.monotonic())) for p in processes]
    failed = [r for r in out if r.error]
    if failed:
        raise RuntimeError(f"publisher failed: {failed[0].client_id}: {failed[0].error}")
    return out


if __name__ == "__main__":
    publisher_main()
