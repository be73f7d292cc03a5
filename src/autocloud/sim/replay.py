"""Replay a real OBD-II recording as one vehicle that speaks vehicle protocol v1.

The recordings are the carOBD data set (``../shared/data/carobd/*.csv``): a 2014 Toyota Etios
logged at 1 Hz through an OBD-II dongle, 27 PIDs a row, no timestamps. Replaying one gives the
platform a car whose twin and history show a real trip (warm-up, stop-and-go, fuel use, the
12 V system charging) rather than a synthetic curve, which is what dashboards, trip detection
and later predictive maintenance should be judged on.

Reading (:func:`read_recording`). The files are CSV with a header of names ending in ``" ()"``
(an empty unit), values written as ``"0.000000, "`` with a trailing comma, CRLF line ends, and
the scars of a real logger: a blank line at the end of one file, a last line cut off mid-write
in another. Names lose their ``" (unit)"`` suffix; blank lines are skipped; a *last* line that
has too few values and no line end is a truncated write and is dropped
(:attr:`Recording.truncated`). Anything else malformed raises
:class:`~autocloud.domain.errors.InvalidInput` naming the file, line and column.

Mapping (:data:`TABLE`). VSS 6.0 has no ``Vehicle.OBD`` branch any more, so each PID goes to
its powertrain or body signal, converted to the signal's VSS datatype (integers for ``uint8``
and ``uint16``):

===============================  =================================================  =========
CSV column (OBD-II PID)          VSS 6.0 signal                                     value
===============================  =================================================  =========
ENGINE_RPM (0x0C)                Vehicle.Powertrain.CombustionEngine.Speed          float rpm
ENGINE_RPM (0x0C)                Vehicle.Powertrain.CombustionEngine.IsRunning      rpm > 0
VEHICLE_SPEED (0x0D)             Vehicle.Speed                                      float km/h
VEHICLE_SPEED (0x0D)             Vehicle.IsMoving                                   speed > 0
THROTTLE (0x11)                  Vehicle.Powertrain.CombustionEngine.TPS            int %
COOLANT_TEMPERATURE (0x05)       Vehicle.Powertrain.CombustionEngine.EngineCoolant  float °C
                                 .Temperature
INTAKE_MANIFOLD_PRESSURE (0x0B)  Vehicle.Powertrain.CombustionEngine.MAP            int kPa
FUEL_TANK (0x2F)                 Vehicle.Powertrain.FuelSystem.RelativeLevel        int %
CONTROL_MODULE_VOLTAGE (0x42)    Vehicle.LowVoltageBattery.CurrentVoltage           float V
===============================  =================================================  =========

The other 20 columns have no leaf in VSS 6.0 (checked against the full release, not only the
platform's catalog) or none that means the same thing, and are not sent; :data:`UNMAPPED` says
why for each, and ``docs/replay.md`` lists both tables.

Checking (:func:`samples`). Every value is checked with the platform's own
:class:`~autocloud.domain.catalog.Catalog` before it is sent, exactly as ingest will check it.
A value the catalog refuses is not sent but counted per column in :class:`ReplayStats` (with
the first refusal's wording), so a bad recording shows up in the summary instead of as a
silent gap or a stream of dead letters.

Publishing (:func:`replay`). One vehicle, one MQTT connection with the vehicle's own login
(username = client id = VIN), MQTT 3.1.1 (which both the embedded amqtt broker and Mosquitto
speak), a retained ``{"online": false}`` last will, a retained ``{"online": true, ...}`` at the
start and ``{"online": false, ...}`` at the end, a fresh ``sid`` per replay and ``seq`` counting
up from 1. Telemetry is QoS 1 and every PUBACK is awaited (with up to ``window`` messages in
flight, so a fast replay is not one round trip per message).

Time. The recording has no clock, only its 1 Hz rhythm, so the replay places it in time: the
**last row lands at "now"** (the moment the replay starts) and row *i* at
``now - (rows - 1 - i) * period``. Replaying faster than real time (``speedup`` 20 by default,
0 for as fast as possible) would otherwise run the vehicle clock ahead of the wall clock —
drive1.csv is 45 minutes long, so at 20x a clock started at "now" would end 43 minutes in
the future, and the platform refuses timestamps more than 300 s ahead (``future_timestamp``).
Anchored at the end, no timestamp is ever in the future, the 1 s spacing survives for history
and trip analytics, and the twin finishes on the recording's last row as its newest value.
The price: samples arrive late by up to the recording's length (the twin shows their age);
pass ``end_ms`` to place the recording elsewhere.
"""

from __future__ import annotations

import collections
import functools
import itertools
import math
import re
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlsplit

import msgspec
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from autocloud.domain.catalog import Catalog, Checked, Scalar
from autocloud.domain.errors import InvalidInput, StoreUnavailable, Unauthorized

__all__ = [
    "DEFAULT_BROKER",
    "MAX_BATCH",
    "PERIOD_MS",
    "TABLE",
    "UNMAPPED",
    "PidMapping",
    "Progress",
    "Recording",
    "ReplayStats",
    "read_recording",
    "replay",
    "samples",
]

PERIOD_MS: Final = 1000
"""The carOBD recordings' sampling period: one row a second."""

DEFAULT_BROKER: Final = "mqtt://127.0.0.1:1883"

MAX_BATCH: Final = 100
"""Most rows in one ``samples`` message: about 60 kB, half the platform's 128 kB limit."""

Progress = Callable[[int, int], None]
"""Called with (rows acknowledged by the broker, rows in the recording)."""

_encode: Final = msgspec.json.encode
_UNIT_SUFFIX: Final = re.compile(r"\s*\([^()]*\)\s*$")


# --- reading a recording ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Recording:
    """A parsed OBD-II log: column names (without their ``" (unit)"``) and rows of floats.

    ``truncated`` is true when the file's last line was cut off mid-write and dropped.
    """

    path: Path
    columns: tuple[str, ...]
    rows: tuple[tuple[float, ...], ...]
    truncated: bool = False

    def __len__(self) -> int:
        return len(self.rows)

    def index(self, name: str) -> int:
        """Position of column ``name``; :class:`InvalidInput` naming the columns if absent."""
        try:
            return self.columns.index(name)
        except ValueError:
            raise InvalidInput(
                f"{self.path} has no column {name!r}; it has: {', '.join(self.columns)}"
            ) from None

    def column(self, name: str) -> tuple[float, ...]:
        """Every value of one column, in row order."""
        at = self.index(name)
        return tuple(row[at] for row in self.rows)

    def row(self, number: int) -> dict[str, float]:
        """Row ``number`` (0-based; negative counts from the end) as ``{column: value}``."""
        return dict(zip(self.columns, self.rows[number], strict=True))


def _fields(line: str) -> list[str]:
    """Split a CSV line on commas, trimming blanks; a trailing comma ends the line."""
    parts = [part.strip() for part in line.split(",")]
    if len(parts) > 1 and parts[-1] == "":
        parts.pop()
    return parts


def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def _header(path: Path, number: int, line: str) -> tuple[str, ...]:
    names = tuple(_UNIT_SUFFIX.sub("", field) for field in _fields(line))
    if all(_number(name) is not None for name in names):
        raise InvalidInput(
            f"{path}:{number}: expected a header of column names, found numbers; "
            "the first line must name the PIDs (e.g. 'ENGINE_RPM ()')"
        )
    empty = [i + 1 for i, name in enumerate(names) if not name]
    if empty:
        raise InvalidInput(f"{path}:{number}: header column {empty[0]} has no name")
    twice = sorted(name for name, n in Counter(names).items() if n > 1)
    if twice:
        raise InvalidInput(f"{path}:{number}: header names {', '.join(twice)} more than once")
    return names


def _values(
    path: Path, number: int, names: tuple[str, ...], fields: list[str]
) -> tuple[float, ...]:
    values = tuple(_number(text) for text in fields)
    for name, text, parsed in zip(names, fields, values, strict=True):
        if parsed is None:
            shown = repr(text) if text else "an empty value"
            raise InvalidInput(f"{path}:{number}: column {name}: {shown} is not a number")
    return tuple(v for v in values if v is not None)


def read_recording(path: Path) -> Recording:
    """Parse a carOBD-style CSV: a header of names, then one row of numbers a sample.

    Tolerates what real logs contain (trailing commas, blanks around values, CRLF, a UTF-8
    BOM, blank lines, a truncated last line); raises :class:`InvalidInput` with ``file:line``
    for anything else: unreadable or empty file, no header, a row with the wrong number of
    values or a value that is not a number, or no rows at all.
    """
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise InvalidInput(f"{path} is not a text CSV file (not UTF-8)") from None
    except OSError as exc:
        raise InvalidInput(f"cannot read recording {path}: {exc.strerror or exc}") from None
    lines = [(n, line) for n, line in enumerate(text.splitlines(), 1) if line.strip()]
    if not lines:
        raise InvalidInput(f"{path} is empty; expected a header line and rows of numbers")
    header_number, header_line = lines[0]
    names = _header(path, header_number, header_line)
    last_number = lines[-1][0]
    ends_cleanly = text.endswith(("\n", "\r"))
    rows: list[tuple[float, ...]] = []
    truncated = False
    for number, line in lines[1:]:
        fields = _fields(line)
        if len(fields) != len(names):
            if number == last_number and not ends_cleanly and len(fields) < len(names):
                truncated = True  # the logger stopped mid-write
                continue
            raise InvalidInput(
                f"{path}:{number}: {len(fields)} values, but the header names {len(names)} columns"
            )
        rows.append(_values(path, number, names, fields))
    if not rows:
        raise InvalidInput(f"{path}: no rows of values after the header")
    return Recording(path, names, tuple(rows), truncated)


# --- mapping PIDs to VSS 6.0 -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PidMapping:
    """One CSV column's value sent as one VSS signal, converted to the signal's datatype."""

    column: str
    path: str
    convert: Callable[[float], Scalar]


def _integer(value: float) -> int:
    """For ``uint8``/``uint16`` signals: VSS wants an integer, never ``3.0``."""
    return round(value)


def _positive(value: float) -> bool:
    """A derived state: RPM above 0 means running, speed above 0 means moving."""
    return value > 0


_ENGINE: Final = "Vehicle.Powertrain.CombustionEngine"

TABLE: Final[tuple[PidMapping, ...]] = (
    PidMapping("ENGINE_RPM", f"{_ENGINE}.Speed", float),
    PidMapping("ENGINE_RPM", f"{_ENGINE}.IsRunning", _positive),
    PidMapping("VEHICLE_SPEED", "Vehicle.Speed", float),
    PidMapping("VEHICLE_SPEED", "Vehicle.IsMoving", _positive),
    PidMapping("THROTTLE", f"{_ENGINE}.TPS", _integer),
    PidMapping("COOLANT_TEMPERATURE", f"{_ENGINE}.EngineCoolant.Temperature", float),
    PidMapping("INTAKE_MANIFOLD_PRESSURE", f"{_ENGINE}.MAP", _integer),
    PidMapping("FUEL_TANK", "Vehicle.Powertrain.FuelSystem.RelativeLevel", _integer),
    PidMapping("CONTROL_MODULE_VOLTAGE", "Vehicle.LowVoltageBattery.CurrentVoltage", float),
)
"""Which column feeds which VSS 6.0 signal; a column may feed a measured and a derived one."""

_NO_LEAF: Final = "no VSS 6.0 leaf"

UNMAPPED: Final[Mapping[str, str]] = {
    "ENGINE_RUN_TINE": f"{_NO_LEAF} for time since engine start (EngineHours is a lifetime total)",
    "ENGINE_LOAD": f"{_NO_LEAF} for calculated engine load",
    "LONG_TERM_FUEL_TRIM_BANK_1": f"{_NO_LEAF} for fuel trims",
    "SHORT_TERM_FUEL_TRIM_BANK_1": f"{_NO_LEAF} for fuel trims",
    "ABSOLUTE_THROTTLE_B": f"{_NO_LEAF} for the second throttle sensor; TPS comes from THROTTLE",
    "PEDAL_D": (
        "raw pedal sensor ratio (16 % at rest), not the travel that "
        "Vehicle.Chassis.Accelerator.PedalPosition means; that leaf is not in the catalog either"
    ),
    "PEDAL_E": "second raw pedal sensor; as PEDAL_D",
    "COMMANDED_THROTTLE_ACTUATOR": f"{_NO_LEAF} for the commanded throttle",
    "FUEL_AIR_COMMANDED_EQUIV_RATIO": f"{_NO_LEAF} for the commanded lambda",
    "ABSOLUTE_BAROMETRIC_PRESSURE": f"{_NO_LEAF} for barometric pressure",
    "RELATIVE_THROTTLE_POSITION": f"{_NO_LEAF}; TPS comes from THROTTLE (PID 0x11)",
    "INTAKE_AIR_TEMP": (
        f"{_NO_LEAF} for intake air; Vehicle.Exterior.AirTemperature is ambient air, "
        "which under-bonnet intake air (45-56 °C in drive1) is not"
    ),
    "TIMING_ADVANCE": f"{_NO_LEAF} for ignition timing",
    "CATALYST_TEMPERATURE_BANK1_SENSOR1": f"{_NO_LEAF} for catalyst temperature",
    "CATALYST_TEMPERATURE_BANK1_SENSOR2": f"{_NO_LEAF} for catalyst temperature",
    "COMMANDED_EVAPORATIVE_PURGE": f"{_NO_LEAF} for the EVAP purge",
    "TIME_RUN_WITH_MIL_ON": f"{_NO_LEAF} for MIL counters",
    "TIME_SINCE_TROUBLE_CODES_CLEARED": f"{_NO_LEAF} for MIL counters",
    "DISTANCE_TRAVELED_WITH_MIL_ON": f"{_NO_LEAF} for MIL counters",
    "WARM_UPS_SINCE_CODES_CLEARED": f"{_NO_LEAF} for MIL counters",
}
"""The recording's other columns, each with the reason it is not sent."""


@functools.cache
def _builtin_catalog() -> Catalog:
    return Catalog.builtin(None)


@dataclass(slots=True)
class ReplayStats:
    """What a replay sent and what it held back.

    ``sent`` counts signal values that passed the catalog check (one per signal per row);
    ``skipped_by_column`` counts refused values per CSV column, and ``first_refusal`` keeps
    the catalog's wording of the first refusal of each column. ``empty_rows`` counts rows of
    which no value passed, so nothing was sent for them.
    """

    sid: str = ""
    rows: int = 0
    messages: int = 0
    sent: int = 0
    empty_rows: int = 0
    first_ts: int | None = None
    last_ts: int | None = None
    skipped_by_column: Counter[str] = field(default_factory=Counter)
    first_refusal: dict[str, str] = field(default_factory=dict)

    def skip(self, column: str, detail: str) -> None:
        self.skipped_by_column[column] += 1
        self.first_refusal.setdefault(column, detail)


def samples(
    recording: Recording,
    start_ms: int,
    period_ms: int = PERIOD_MS,
    *,
    stats: ReplayStats | None = None,
    catalog: Catalog | None = None,
    table: tuple[PidMapping, ...] = TABLE,
) -> Iterator[tuple[int, dict[str, Scalar]]]:
    """Yield ``(ts, {VSS path: value})`` per row, row *i* at ``start_ms + i * period_ms``.

    Values the catalog (default: the platform's own table) refuses are left out and counted in
    ``stats``; rows left without any value are not yielded. Mappings whose column the recording
    lacks are ignored; a recording with none of the table's columns is :class:`InvalidInput`,
    raised here rather than at the first ``next``.
    """
    if period_ms <= 0:
        raise InvalidInput(f"the sampling period must be positive, not {period_ms} ms")
    bound = [(recording.columns.index(m.column), m) for m in table if m.column in recording.columns]
    if not bound:
        raise InvalidInput(
            f"{recording.path} has none of the columns that map to VSS signals "
            f"({', '.join(sorted({m.column for m in table}))})"
        )
    tally = stats if stats is not None else ReplayStats()
    check = (catalog or _builtin_catalog()).check
    return _rows(recording, start_ms, period_ms, bound, tally, check)


def _rows(
    recording: Recording,
    start_ms: int,
    period_ms: int,
    bound: list[tuple[int, PidMapping]],
    tally: ReplayStats,
    check: Callable[[str, object], Checked],
) -> Iterator[tuple[int, dict[str, Scalar]]]:
    for number, row in enumerate(recording.rows):
        signals: dict[str, Scalar] = {}
        for at, mapping in bound:
            raw = row[at]
            try:
                value = mapping.convert(raw)
            except (ValueError, OverflowError):  # round() of NaN or infinity
                tally.skip(mapping.column, f"{mapping.path}: {raw} is not a finite number")
                continue
            result = check(mapping.path, value)
            if result.ok:
                signals[mapping.path] = value
            else:
                tally.skip(mapping.column, result.detail)
        tally.rows += 1
        if not signals:
            tally.empty_rows += 1
            continue
        tally.sent += len(signals)
        yield start_ms + number * period_ms, signals


# --- publishing as a vehicle -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Endpoint:
    host: str
    port: int
    tls: bool
    url: str


_SCHEMES: Final[Mapping[str, tuple[bool, int]]] = {
    "mqtt": (False, 1883),
    "tcp": (False, 1883),
    "mqtts": (True, 8883),
    "ssl": (True, 8883),
}


def _endpoint(url: str) -> _Endpoint:
    parts = urlsplit(url)
    scheme = _SCHEMES.get(parts.scheme)
    if scheme is None or not parts.hostname:
        raise InvalidInput(f"broker must be mqtt://host:port or mqtts://host:port, not {url!r}")
    tls, default_port = scheme
    try:
        port = parts.port or default_port
    except ValueError:
        raise InvalidInput(f"broker {url!r} has an invalid port") from None
    return _Endpoint(parts.hostname, port, tls, url)


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


class _VehicleConnection:
    """One vehicle's MQTT session: own login, last will, QoS 1 with a window of PUBACKs.

    Each message is queued with the number of recording rows it completes, so
    :attr:`acked_rows` tells how far the broker has acknowledged the replay. The session is
    clean: protocol v1 asks for a persistent one so that queued commands reach the car, but a
    replay subscribes to nothing and should leave no session state behind in the broker.
    """

    def __init__(
        self, vin: str, secret: str, endpoint: _Endpoint, window: int, timeout_s: float
    ) -> None:
        self.vin = vin
        self.timeout_s = timeout_s
        self.window = window
        self.acked_rows = 0
        self.said_offline = False
        self._pending: collections.deque[tuple[Any, int]] = collections.deque()
        self._endpoint = endpoint
        self._answered = threading.Event()
        self._refusal: str | None = None
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=vin, protocol=mqtt.MQTTv311, clean_session=True
        )
        client.username_pw_set(vin, secret)
        if endpoint.tls:
            client.tls_set()
        client.will_set(self.topic("state"), _encode({"online": False}), qos=1, retain=True)
        client.max_inflight_messages_set(window)
        client.on_connect = self._on_connect
        self.client = client

    def topic(self, sub: str) -> str:
        return f"vehicles/{self.vin}/{sub}"

    def _on_connect(self, _c: Any, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        if reason.is_failure:
            self._refusal = str(reason)
        self._answered.set()

    def connect(self) -> None:
        """Connect and wait for the CONNACK; a refused login is :class:`Unauthorized`."""
        url = self._endpoint.url
        try:
            self.client.connect(self._endpoint.host, self._endpoint.port, keepalive=30)
        except OSError as exc:
            raise StoreUnavailable(f"cannot reach the MQTT broker at {url}: {exc}") from None
        self.client.loop_start()
        answered = self._answered.wait(self.timeout_s)
        if answered and self._refusal is None:
            return
        self.client.loop_stop()
        self.client.disconnect()
        if not answered:
            raise StoreUnavailable(f"the MQTT broker at {url} did not answer in {self.timeout_s}s")
        raise Unauthorized(
            f"the MQTT broker at {url} refused {self.vin}: {self._refusal}; "
            "check the VIN and its secret (a rotated secret stops working)"
        )

    def state(self, online: bool, sid: str | None = None) -> None:
        """Publish the retained connection state (§6 of the protocol)."""
        body: dict[str, object] = {"online": online, "ts": _now_ms()}
        if sid is not None:
            body["sid"] = sid
        self.publish("state", body, retain=True)
        self.said_offline = not online

    def publish(self, sub: str, body: object, *, rows: int = 0, retain: bool = False) -> None:
        """Queue a QoS 1 message; block while more than ``window`` await their PUBACK."""
        info = self.client.publish(self.topic(sub), _encode(body), qos=1, retain=retain)
        self._pending.append((info, rows))
        while len(self._pending) > self.window:
            self._pop(wait=True)
        while self._pending and self._pending[0][0].is_published():
            self._pop(wait=False)

    def drain(self) -> None:
        """Wait until every message sent so far is acknowledged."""
        while self._pending:
            self._pop(wait=True)

    def _pop(self, *, wait: bool) -> None:
        info, rows = self._pending[0]
        if wait:
            self._await(info)
        self._pending.popleft()
        self.acked_rows = max(self.acked_rows, rows)

    def _await(self, info: Any) -> None:
        try:
            info.wait_for_publish(self.timeout_s)
        except (RuntimeError, ValueError) as exc:
            raise StoreUnavailable(f"publishing to {self._endpoint.url} failed: {exc}") from None
        if not info.is_published():
            raise StoreUnavailable(
                f"no PUBACK from {self._endpoint.url} within {self.timeout_s}s; "
                "is the platform ingesting?"
            )

    def close(self) -> None:
        """Disconnect; after an interruption, first say offline (a clean DISCONNECT
        suppresses the last will), without waiting long for its PUBACK."""
        try:
            if not self.said_offline:
                info = self.client.publish(
                    self.topic("state"), _encode({"online": False, "ts": _now_ms()}), 1, True
                )
                info.wait_for_publish(min(self.timeout_s, 2.0))
        except (RuntimeError, ValueError):
            pass  # the connection is gone; the broker publishes the last will instead
        finally:
            self.client.disconnect()
            self.client.loop_stop()


def _message(sid: str, seq: int, chunk: tuple[tuple[int, dict[str, Scalar]], ...]) -> object:
    """Telemetry in the inline form for one row, in the ``samples`` form for several."""
    if len(chunk) == 1:
        ts, signals = chunk[0]
        return {"v": 1, "sid": sid, "seq": seq, "ts": ts, "signals": signals}
    return {
        "v": 1,
        "sid": sid,
        "seq": seq,
        "samples": [{"ts": ts, "signals": signals} for ts, signals in chunk],
    }


def _check_options(speedup: float, batch: int, window: int) -> None:
    if not math.isfinite(speedup) or speedup < 0:
        raise InvalidInput(f"speedup must be 0 (as fast as possible) or positive, not {speedup}")
    if not 1 <= batch <= MAX_BATCH:
        raise InvalidInput(f"batch must be 1 to {MAX_BATCH} rows a message, not {batch}")
    if window < 1:
        raise InvalidInput(f"window must be at least 1 message, not {window}")


def replay(
    recording: Recording,
    *,
    vin: str,
    secret: str,
    broker: str = DEFAULT_BROKER,
    speedup: float = 20.0,
    batch: int = 1,
    period_ms: int = PERIOD_MS,
    end_ms: int | None = None,
    catalog: Catalog | None = None,
    on_progress: Progress | None = None,
    window: int = 64,
    timeout_s: float = 30.0,
) -> ReplayStats:
    """Publish ``recording`` as vehicle ``vin`` and return what was sent once all is acked.

    ``speedup`` is the multiple of real time (0: as fast as the broker acknowledges);
    ``batch`` rows go into one message (1: the inline form; more: the ``samples`` form, for
    fast replays); ``end_ms`` is the timestamp of the last row (default: now, see the module
    docstring for why); ``window`` messages may wait for their PUBACK at once.
    Raises :class:`InvalidInput` for bad options, :class:`Unauthorized` when the broker refuses
    the login, :class:`StoreUnavailable` when it cannot be reached or stops acknowledging.
    """
    _check_options(speedup, batch, window)
    endpoint = _endpoint(broker)
    end = _now_ms() if end_ms is None else end_ms
    start = end - (len(recording) - 1) * period_ms
    stats = ReplayStats(sid=f"replay-{uuid.uuid4().hex[:12]}")
    rows = samples(recording, start, period_ms, stats=stats, catalog=catalog)
    link = _VehicleConnection(vin, secret, endpoint, window, timeout_s)
    link.connect()
    try:
        link.state(True, stats.sid)
        began = time.monotonic()
        for chunk in itertools.batched(rows, batch):
            last_ts = chunk[-1][0]
            if speedup:  # send when the chunk's last row is due
                due = began + (last_ts - start) / 1000 / speedup
                time.sleep(max(0.0, due - time.monotonic()))
            stats.messages += 1
            done = (last_ts - start) // period_ms + 1
            link.publish("telemetry", _message(stats.sid, stats.messages, chunk), rows=done)
            stats.first_ts = chunk[0][0] if stats.first_ts is None else stats.first_ts
            stats.last_ts = last_ts
            if on_progress is not None:
                on_progress(link.acked_rows, len(recording))
        link.state(False)
        link.drain()
    finally:
        link.close()
    if on_progress is not None:
        on_progress(len(recording), len(recording))
    return stats
