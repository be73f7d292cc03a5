"""Alert rules: what a tenant asks to be told about, validated into plain values.

What: a rule has a name, a severity and one condition:

* a **signal condition** — ``path op threshold`` (``<``, ``<=``, ``>``, ``>=``, ``==``,
  ``!=``) held for ``for_s`` seconds of vehicle time, optionally only ``while`` another signal
  meets a guard (``Vehicle.IsMoving == false``: parked); it resolves once the value is back
  past ``threshold ± hysteresis``. A path may use ``*`` for one path segment (``Vehicle.
  Chassis.Axle.*.Wheel.*.Tire.Pressure``: any tyre);
* an **event condition** — ``dtc.raised`` with an optional minimum DTC severity and code
  prefixes (open while a matching code is active), or any other event type (open when it
  happens; resolved by an optional ``clear_type`` event or by acknowledging it).

Rules travel as JSON specs (API bodies, the database); :func:`parse_condition` is the one
place that checks them, with errors that say what to change. Evaluation is in
:mod:`autocloud.domain.alert_eval`; the records ingest writes are at the end.
"""

import enum
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final, NamedTuple

from autocloud.domain.catalog import Catalog, Datatype
from autocloud.domain.dtc import Severity
from autocloud.domain.errors import InvalidInput

__all__ = [
    "DTC_RAISED",
    "Alert",
    "AlertChanges",
    "AlertOpened",
    "AlertResolved",
    "AlertRule",
    "AlertState",
    "EventCondition",
    "Guard",
    "Op",
    "PendingChanges",
    "PendingWait",
    "SignalCondition",
    "condition_spec",
    "parse_condition",
    "parse_expression",
    "path_pattern",
]

DTC_RAISED: Final = "dtc.raised"
MAX_FOR_S: Final = 7 * 86_400
_PATH: Final = re.compile(r"^[A-Z][A-Za-z0-9_]*(\.([A-Za-z0-9_]+|\*))+$")
_EVENT: Final = re.compile(r"^[a-z]+(\.[a-z0-9_]+)*$")
_CODE_PREFIX: Final = re.compile(r"^[PCBU]([0-3][0-9A-F]{0,3})?$")
_EXPRESSION: Final = re.compile(r"^\s*([A-Za-z0-9_.*]+)\s*(<=|>=|==|!=|<|>|=)\s*(.+?)\s*$")
_NUMBERS: Final = frozenset(
    {Datatype.UINT8, Datatype.INT8, Datatype.UINT16, Datatype.INT16, Datatype.UINT32}
    | {Datatype.INT32, Datatype.UINT64, Datatype.INT64, Datatype.FLOAT, Datatype.DOUBLE}
)


class Op(enum.StrEnum):
    LT = "<"
    LE = "<="
    GT = ">"
    GE = ">="
    EQ = "=="
    NE = "!="

    @property
    def ordering(self) -> bool:
        return self in (Op.LT, Op.LE, Op.GT, Op.GE)

    @classmethod
    def parse(cls, text: object) -> "Op":
        try:
            return cls("==" if text == "=" else str(text))
        except ValueError:
            allowed = " ".join(o.value for o in cls)
            raise InvalidInput(f"operator {text!r} is not one of {allowed}") from None


class AlertState(enum.StrEnum):
    OPEN = "open"
    ACKNOWLEDGED = "acknowledged"
    RESOLVED = "resolved"


Threshold = float | bool | str


@dataclass(frozen=True, slots=True)
class Guard:
    """``while``: the rule counts only while this signal meets this test."""

    path: str
    op: Op
    value: Threshold


@dataclass(frozen=True, slots=True)
class SignalCondition:
    path: str  # may hold `*` segments
    op: Op
    threshold: Threshold
    hysteresis: float = 0.0
    for_s: float = 0.0
    guard: Guard | None = None

    @property
    def for_ms(self) -> int:
        return int(self.for_s * 1000)


@dataclass(frozen=True, slots=True)
class EventCondition:
    type: str
    min_severity: Severity | None = None  # dtc.raised only
    codes: tuple[str, ...] = ()  # dtc.raised only: code prefixes, any of them
    clear_type: str | None = None  # other events: the event that resolves the alert

    @property
    def is_dtc(self) -> bool:
        return self.type == DTC_RAISED


Condition = SignalCondition | EventCondition


@dataclass(frozen=True, slots=True)
class AlertRule:
    id: int
    brand: str
    name: str
    severity: Severity
    condition: Condition
    created_ms: int
    created_by: str


def path_pattern(path: str) -> re.Pattern[str]:
    """A path with `*` segments as a regular expression matching whole paths."""
    return re.compile(
        "^" + r"\.".join("[^.]+" if p == "*" else re.escape(p) for p in path.split(".")) + "$"
    )


def _datatype(path: str, catalog: Catalog | None, what: str) -> Datatype | None:
    if not _PATH.match(path):
        raise InvalidInput(f"{what} {path!r} is not a VSS path such as Vehicle.Speed")
    if catalog is None:
        return None
    if "*" not in path:
        spec = catalog.spec(path)
        if spec is None:
            raise InvalidInput(f"{what} {path} is not a known signal")
        return spec.datatype
    pattern = path_pattern(path)
    types = {s.datatype for s in catalog.own() if pattern.match(s.path)}
    if not types:
        raise InvalidInput(f"{what} {path} matches no signal of the platform catalog")
    if len(types) > 1 and not types <= _NUMBERS:
        raise InvalidInput(f"{what} {path} matches signals of different types: {sorted(types)}")
    return next(iter(types)) if len(types) == 1 else Datatype.DOUBLE


def _value(raw: object, datatype: Datatype | None, op: Op, what: str) -> Threshold:
    """The comparison value for a signal of `datatype` (None: unknown, take it as given)."""
    if datatype is not None and datatype.value.endswith("[]"):
        raise InvalidInput(f"{what}: array signals ({datatype}) cannot be compared")
    if isinstance(raw, bool) or datatype is Datatype.BOOLEAN:
        if not isinstance(raw, bool) or (datatype is not None and datatype != Datatype.BOOLEAN):
            raise InvalidInput(f"{what}: {raw!r} does not compare with a {datatype} signal")
        if op.ordering:
            raise InvalidInput(f"{what}: a boolean compares only with == or !=")
        return raw
    if isinstance(raw, int | float):
        if datatype is not None and datatype not in _NUMBERS:
            raise InvalidInput(f"{what}: a number does not compare with a {datatype} signal")
        if raw != raw or raw in (float("inf"), float("-inf")):
            raise InvalidInput(f"{what}: {raw} is not a finite number")
        return float(raw)
    if isinstance(raw, str):
        if (datatype is not None and datatype is not Datatype.STRING) or op.ordering:
            raise InvalidInput(
                f"{what}: text {raw!r} compares only with a string signal, by == or !="
            )
        return raw
    raise InvalidInput(f"{what}: {raw!r} is not a number, boolean or text")


def _number(raw: object, name: str, low: float, high: float) -> float:
    if isinstance(raw, bool) or not isinstance(raw, int | float) or not low <= raw <= high:
        raise InvalidInput(f"{name} must be a number from {low:g} to {high:g}, got {raw!r}")
    return float(raw)


def _fields(spec: object, allowed: set[str], what: str) -> Mapping[str, Any]:
    if not isinstance(spec, Mapping):
        raise InvalidInput(f"{what} must be an object")
    unknown = set(spec) - allowed
    if unknown:
        raise InvalidInput(
            f"{what} has unknown field(s) {sorted(unknown)}; known: {sorted(allowed)}"
        )
    return spec


def _signal(spec: object, catalog: Catalog | None) -> SignalCondition:
    f = _fields(spec, {"path", "op", "threshold", "hysteresis", "for_s", "while"}, "signal")
    for name in ("path", "op", "threshold"):
        if f.get(name) is None:
            raise InvalidInput(
                f"signal needs {name!r} (e.g. path Vehicle.Speed, op >, threshold 120)"
            )
    path, op = str(f["path"]), Op.parse(f["op"])
    threshold = _value(f["threshold"], _datatype(path, catalog, "signal path"), op, "threshold")
    hysteresis = _number(f.get("hysteresis", 0), "hysteresis", 0, 1e12)
    if hysteresis and not op.ordering:
        raise InvalidInput("hysteresis needs an ordering operator (<, <=, >, >=)")
    guard = None
    if f.get("while") is not None:
        g = _fields(f["while"], {"path", "op", "value"}, "while")
        if g.get("path") is None or g.get("op") is None or "value" not in g:
            raise InvalidInput("while needs path, op and value, e.g. Vehicle.IsMoving == false")
        gpath, gop = str(g["path"]), Op.parse(g["op"])
        if "*" in gpath:
            raise InvalidInput("a while guard names one signal, without *")
        gvalue = _value(g["value"], _datatype(gpath, catalog, "while path"), gop, "while value")
        guard = Guard(gpath, gop, gvalue)
    for_s = _number(f.get("for_s", 0), "for_s", 0, MAX_FOR_S)
    return SignalCondition(path, op, threshold, hysteresis, for_s, guard)


def _event(spec: object) -> EventCondition:
    f = _fields(spec, {"type", "severity", "codes", "clear_type"}, "event")
    kind = f.get("type")
    if not isinstance(kind, str) or not _EVENT.match(kind):
        raise InvalidInput(f"event type {kind!r} must look like dtc.raised or alarm.tow")
    severity, codes = f.get("severity"), f.get("codes") or []
    clear = f.get("clear_type")
    if kind != DTC_RAISED and (severity is not None or codes):
        raise InvalidInput("severity and codes filter dtc.raised events only")
    if kind == DTC_RAISED and clear is not None:
        raise InvalidInput("a dtc.raised alert resolves when its codes clear; drop clear_type")
    if clear is not None and (not isinstance(clear, str) or not _EVENT.match(clear)):
        raise InvalidInput(f"clear_type {clear!r} must be an event type such as alarm.cleared")
    if not isinstance(codes, list) or not all(isinstance(c, str) for c in codes):
        raise InvalidInput("codes must be a list of code prefixes such as ['P03', 'B00']")
    prefixes = tuple(c.strip().upper() for c in codes)
    bad = [c for c in prefixes if not _CODE_PREFIX.match(c)]
    if bad:
        raise InvalidInput(f"code prefixes {bad} are not the start of a DTC such as P03 or B0001")
    level = Severity.parse(severity) if isinstance(severity, str) else None
    if severity is not None and level is None:
        raise InvalidInput("severity must be info, warning or critical")
    return EventCondition(kind, level, prefixes, clear)


def parse_condition(spec: Mapping[str, Any], catalog: Catalog | None) -> Condition:
    """The condition in ``{"signal": {...}}`` or ``{"event": {...}}``; InvalidInput if bad.

    With a `catalog`, paths must be known signals and thresholds of their type; without one
    (rules read back from the database) only the shape is checked.
    """
    given = [k for k in ("signal", "event") if spec.get(k) is not None]
    if len(given) != 1:
        raise InvalidInput('a rule needs exactly one condition: "signal" or "event"')
    return _signal(spec["signal"], catalog) if given[0] == "signal" else _event(spec["event"])


def condition_spec(condition: Condition) -> dict[str, Any]:
    """The JSON spec of a condition (what :func:`parse_condition` reads back)."""
    if isinstance(condition, EventCondition):
        event: dict[str, Any] = {"type": condition.type}
        if condition.min_severity is not None:
            event["severity"] = condition.min_severity.label
        if condition.codes:
            event["codes"] = list(condition.codes)
        if condition.clear_type is not None:
            event["clear_type"] = condition.clear_type
        return {"event": event}
    signal: dict[str, Any] = {
        "path": condition.path,
        "op": condition.op.value,
        "threshold": condition.threshold,
        "hysteresis": condition.hysteresis,
        "for_s": condition.for_s,
    }
    if condition.guard is not None:
        g = condition.guard
        signal["while"] = {"path": g.path, "op": g.op.value, "value": g.value}
    return {"signal": signal}


def parse_expression(text: str) -> tuple[str, str, Threshold]:
    """``"Vehicle.Speed > 120"`` as (path, op, value) for the CLI: true/false, numbers, text."""
    match = _EXPRESSION.match(text)
    if match is None:
        raise InvalidInput(f"{text!r} must look like 'Vehicle.Speed > 120'")
    path, op, raw = match.groups()
    value: Threshold
    if raw in ("true", "false"):
        value = raw == "true"
    else:
        try:
            value = float(raw)
        except ValueError:
            value = raw.strip("\"'")
    return path, op, value


# --- what evaluation writes and the API reads --------------------------------------------------


@dataclass(slots=True)
class AlertOpened:
    """An alert to open (a WriteBatch extra record); the store sets ``id`` when it writes it."""

    rule_id: int
    rule_name: str
    brand: str
    vehicle_id: int
    vin: str
    severity: str
    key: str  # the signal path that fired, or "" for event rules
    value: Any  # what fired it (a signal value, the matching codes, the event data)
    detail: str
    ts: int  # vehicle time
    received_ms: int
    id: int | None = None


@dataclass(slots=True)
class AlertResolved:
    """An open or acknowledged alert of (rule, vehicle) to resolve; the store sets ``id``."""

    rule_id: int
    vehicle_id: int
    vin: str
    brand: str
    reason: str
    ts: int
    received_ms: int
    id: int | None = None


@dataclass(slots=True)
class AlertChanges:
    """One ingest batch's alert transitions, in order (the WriteBatch extra record).

    One record for both kinds, so an alert that opens and resolves (or resolves and opens
    anew) within one batch is written in the order it happened.
    """

    items: list[AlertOpened | AlertResolved]


class PendingWait(NamedTuple):
    """A signal rule's condition holding on one vehicle, not yet for ``for_s``.

    Kept durably (written in the ingest transaction, restored at start) so that a restart
    in the middle of the wait resumes it from ``since`` instead of starting it over. A named
    tuple (immutable, ~3x cheaper to make than a frozen dataclass): ingest makes one each
    time a wait starts.
    """

    rule_id: int
    vehicle_id: int
    key: str  # the signal path
    since: int  # vehicle time the condition started holding
    last_ts: int  # vehicle time of the sample that last moved the wait
    value: Any  # the value that started it


@dataclass(slots=True)
class PendingChanges:
    """One ingest batch's changes to pending waits (a WriteBatch extra record): waits that
    started (or restarted), and waits that ended — their alert opened, the condition stopped
    holding, or their rule changed."""

    started: list[PendingWait]
    ended: list[tuple[int, int, str]]  # (rule id, vehicle id, signal path)


@dataclass(frozen=True, slots=True)
class Alert:
    id: int
    rule_id: int
    rule_name: str
    brand: str
    vehicle_id: int
    vin: str
    severity: str
    state: AlertState
    key: str
    value: Any
    detail: str
    opened_ts: int
    opened_ms: int
    acked_ms: int | None = None
    acked_by: str | None = None
    resolved_ts: int | None = None
    resolved_ms: int | None = None
    resolved_reason: str | None = None
