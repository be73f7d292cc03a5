"""The signal catalog: which VSS signals the platform accepts, and how each value is checked.

Vehicles publish COVESA VSS signals as ``{"Vehicle.Speed": 42.5, ...}``. Every value passes
through :meth:`Catalog.check` on ingestion, so a wrong type, an out-of-range number or an
unknown path is caught once, at the edge, and turned into a dead-letter reason instead of
polluting digital twins and history.

The catalog has two sources: the platform's own table (:mod:`autocloud.domain.signal_table`,
the signals dashboards, alerts and remote services are built for) and, optionally, every leaf
of an official VSS release JSON, so that vehicles may also send signals the platform stores
but does not interpret.

``check`` is on the hot path (millions of calls per second across the fleet), so each signal
gets a checker function built once, looked up in a dict and specialised on its datatype; the
common case (exact type, in range) costs one dict lookup, one type test and a comparison.
Accepted booleans, small integers and allowed strings return shared, pre-built results.
Everything unusual (subclasses, rejections) falls through to one slow, thorough function that
is the single source of truth for the rules.

This module is pure except :func:`load_vss_leaves`, which reads the release file.
"""

from __future__ import annotations

import enum
import json
import math
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, cast

from autocloud.domain.errors import ConfigurationError

__all__ = [
    "Catalog",
    "Checked",
    "Datatype",
    "Rejection",
    "Scalar",
    "SignalSpec",
    "Value",
    "load_vss_leaves",
]


class Datatype(enum.StrEnum):
    """The primitive VSS datatypes and their array forms, spelled as in the release JSON."""

    BOOLEAN = "boolean"
    STRING = "string"
    UINT8 = "uint8"
    INT8 = "int8"
    UINT16 = "uint16"
    INT16 = "int16"
    UINT32 = "uint32"
    INT32 = "int32"
    UINT64 = "uint64"
    INT64 = "int64"
    FLOAT = "float"
    DOUBLE = "double"
    BOOLEAN_ARRAY = "boolean[]"
    STRING_ARRAY = "string[]"
    UINT8_ARRAY = "uint8[]"
    INT8_ARRAY = "int8[]"
    UINT16_ARRAY = "uint16[]"
    INT16_ARRAY = "int16[]"
    UINT32_ARRAY = "uint32[]"
    INT32_ARRAY = "int32[]"
    UINT64_ARRAY = "uint64[]"
    INT64_ARRAY = "int64[]"
    FLOAT_ARRAY = "float[]"
    DOUBLE_ARRAY = "double[]"


@dataclass(frozen=True, slots=True)
class SignalSpec:
    """One VSS leaf: its dotted path and the constraints a value must meet.

    ``min``/``max``/``allowed`` are the release's own limits (for arrays they apply to each
    element); ``kind`` is the VSS node type: sensor, actuator or attribute.
    """

    path: str
    datatype: Datatype
    unit: str | None = None
    min: float | None = None
    max: float | None = None
    allowed: tuple[str, ...] | None = None
    kind: str = "sensor"
    description: str = ""


class Rejection(enum.StrEnum):
    """Why a single value was refused; the strings are used verbatim as dead-letter reasons.

    Non-finite numbers (NaN, ±Infinity) count as ``OUT_OF_RANGE``; a branch path such as
    ``Vehicle.Cabin`` counts as ``UNKNOWN_SIGNAL``, since only leaves carry values.
    """

    UNKNOWN_SIGNAL = "unknown_signal"
    WRONG_TYPE = "wrong_type"
    OUT_OF_RANGE = "out_of_range"
    NOT_ALLOWED = "not_allowed"


Scalar = bool | int | float | str
"""A normalised single value."""

Value = Scalar | tuple[Scalar, ...] | None
"""A normalised value: a scalar, a tuple for array signals, ``None`` when rejected."""


@dataclass(frozen=True, slots=True)
class Checked:
    """The outcome of checking one value.

    Accepted: ``value`` is normalised (``int`` for integer types, ``float`` for float/double,
    a tuple for arrays), ``rejection`` is ``None`` and ``detail`` is ``""``. Rejected:
    ``value`` is ``None`` and ``detail`` says which signal, which value and which limit or
    type, e.g. ``"Vehicle.CurrentLocation.Latitude=91 is above the maximum 90 degrees"``.
    Accepted results may be shared between calls; compare them by value, not identity.
    """

    value: Value
    rejection: Rejection | None
    detail: str

    @property
    def ok(self) -> bool:
        """True when the value was accepted."""
        return self.rejection is None


# --- datatype tables -------------------------------------------------------------------------

_BOOL: Final = "bool"
_STR: Final = "str"
_INT: Final = "int"
_FLOAT: Final = "float"

_FAMILY: Final[Mapping[Datatype, str]] = {
    Datatype.BOOLEAN: _BOOL,
    Datatype.STRING: _STR,
    Datatype.UINT8: _INT,
    Datatype.INT8: _INT,
    Datatype.UINT16: _INT,
    Datatype.INT16: _INT,
    Datatype.UINT32: _INT,
    Datatype.INT32: _INT,
    Datatype.UINT64: _INT,
    Datatype.INT64: _INT,
    Datatype.FLOAT: _FLOAT,
    Datatype.DOUBLE: _FLOAT,
}

_ELEMENT: Final[Mapping[Datatype, Datatype]] = {
    Datatype(f"{scalar.value}[]"): scalar for scalar in _FAMILY
}

_FLOAT32_MAX: Final = 3.4028234663852886e38
_FLOAT64_MAX: Final = 1.7976931348623157e308

# Natural value range of each numeric datatype: what the wire type can hold at all.
_NATURAL: Final[Mapping[Datatype, tuple[float, float]]] = {
    Datatype.UINT8: (0, 2**8 - 1),
    Datatype.INT8: (-(2**7), 2**7 - 1),
    Datatype.UINT16: (0, 2**16 - 1),
    Datatype.INT16: (-(2**15), 2**15 - 1),
    Datatype.UINT32: (0, 2**32 - 1),
    Datatype.INT32: (-(2**31), 2**31 - 1),
    Datatype.UINT64: (0, 2**64 - 1),
    Datatype.INT64: (-(2**63), 2**63 - 1),
    Datatype.FLOAT: (-_FLOAT32_MAX, _FLOAT32_MAX),
    Datatype.DOUBLE: (-_FLOAT64_MAX, _FLOAT64_MAX),
}

_NUMERIC: Final = frozenset(dt for dt, family in _FAMILY.items() if family != _STR)
_RANGED: Final = frozenset(dt for dt, family in _FAMILY.items() if family in (_INT, _FLOAT))

_EXPECTED: Final[Mapping[str, str]] = {
    _BOOL: "true or false",
    _STR: "a string",
    _INT: "an integer",
    _FLOAT: "a number",
}

_VSS_LEAF_KINDS: Final = frozenset({"sensor", "actuator", "attribute"})

# --- building results ------------------------------------------------------------------------

Checker = Callable[[object], Checked]

# A frozen dataclass's generated __init__ goes through object.__setattr__ three times, which
# costs about twice as much as writing the slots directly. Accepting a value is the hot path,
# so it builds results by setting the slot descriptors.
_new_checked: Final = object.__new__
_SLOTS: Final[Mapping[str, Any]] = Checked.__dict__
_set_value: Final[Callable[[Checked, Value], None]] = _SLOTS["value"].__set__
_set_rejection: Final[Callable[[Checked, Rejection | None], None]] = _SLOTS["rejection"].__set__
_set_detail: Final[Callable[[Checked, str], None]] = _SLOTS["detail"].__set__


def _accept(value: Value) -> Checked:
    """Build an accepted result quickly; equal to ``Checked(value, None, "")``."""
    result: Checked = _new_checked(Checked)
    _set_value(result, value)
    _set_rejection(result, None)
    _set_detail(result, "")
    return result


_TRUE: Final = Checked(True, None, "")
_FALSE: Final = Checked(False, None, "")
# Shared results for the integers that dominate telemetry (percentages, counts, small codes).
_SMALL_INTS: Final[Mapping[int, Checked]] = {i: Checked(i, None, "") for i in range(-128, 1025)}


def _show(value: object, limit: int = 80) -> str:
    """Render a value for a message as JSON, cut short so a hostile payload cannot bloat logs."""
    if isinstance(value, float) and math.isfinite(value):
        text = repr(float(value))
    elif isinstance(value, list | tuple | dict) and len(value) > 20:
        text = f"<{type(value).__name__} of {len(value)} items>"
    else:
        if isinstance(value, str) and len(value) > limit:
            value = value[:limit]
        try:
            text = json.dumps(value, ensure_ascii=False)
        except (TypeError, ValueError, RecursionError):
            text = f"<{type(value).__name__}>"
    return _clip(text, limit)


def _path(path: str) -> str:
    """Render a signal path for a message: bare when printable, quoted JSON otherwise."""
    if len(path) <= 200 and path.isprintable() and " " not in path:
        return path
    return _show(path, 200)


def _number_text(number: float) -> str:
    """Format a limit: integers exactly, integral floats without ``.0``, others as repr."""
    if isinstance(number, int):
        return str(number)
    if number.is_integer() and abs(number) < 1e15:
        return str(int(number))
    return repr(number)


def _limit(number: float, spec: SignalSpec) -> str:
    """Format a limit with the signal's unit, e.g. ``90 degrees`` or ``100 percent``."""
    text = _number_text(number)
    return f"{text} {spec.unit}" if spec.unit else text


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _reject(rejection: Rejection, detail: str) -> Checked:
    return Checked(None, rejection, detail)


def _wrong_type(label: str, value: object, datatype: Datatype, expected: str) -> Checked:
    return _reject(
        Rejection.WRONG_TYPE,
        f"{label}={_show(value)} has the wrong type: expected {expected} ({datatype}), "
        f"got {type(value).__name__}",
    )


def _check_range(
    label: str, number: float, spec: SignalSpec, datatype: Datatype, original: object
) -> Checked | None:
    """Return a rejection if ``number`` breaks the spec's or the datatype's limits.

    ``original`` is the value as sent, shown in the message (``101``, not ``101.0``).
    """
    shown = _show(original)
    if spec.min is not None and number < spec.min:
        return _reject(
            Rejection.OUT_OF_RANGE,
            f"{label}={shown} is below the minimum {_limit(spec.min, spec)}",
        )
    if spec.max is not None and number > spec.max:
        return _reject(
            Rejection.OUT_OF_RANGE,
            f"{label}={shown} is above the maximum {_limit(spec.max, spec)}",
        )
    low, high = _NATURAL[datatype]
    if number < low:
        return _reject(
            Rejection.OUT_OF_RANGE,
            f"{label}={shown} is below {_number_text(low)}, the smallest {datatype} value",
        )
    if number > high:
        return _reject(
            Rejection.OUT_OF_RANGE,
            f"{label}={shown} is above {_number_text(high)}, the largest {datatype} value",
        )
    return None


def _check_scalar(spec: SignalSpec, datatype: Datatype, label: str, value: object) -> Checked:
    """The complete rules for one scalar value; slow but thorough, and the reference."""
    family = _FAMILY[datatype]
    if family == _BOOL:
        if isinstance(value, bool):
            return _TRUE if value else _FALSE
        return _wrong_type(label, value, datatype, _EXPECTED[family])
    if family == _STR:
        if not isinstance(value, str):
            return _wrong_type(label, value, datatype, _EXPECTED[family])
        text = str(value)
        if "\x00" in text:  # no database column or JSON document of ours can hold U+0000
            return _reject(
                Rejection.OUT_OF_RANGE,
                f"{label}={_show(text)} contains the NUL character (U+0000), which is not "
                "allowed in text values",
            )
        if spec.allowed is not None and text not in spec.allowed:
            return _reject(
                Rejection.NOT_ALLOWED,
                f"{label}={_show(text)} is not one of the allowed values: "
                + _clip(", ".join(spec.allowed), 300),
            )
        return _accept(text)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return _wrong_type(label, value, datatype, _EXPECTED[family])
    if family == _INT:
        if not isinstance(value, int):
            return _wrong_type(label, value, datatype, _EXPECTED[family])
        integer = int(value)
        return _check_range(label, integer, spec, datatype, value) or _accept(integer)
    try:
        number = float(value)
    except OverflowError:
        return _reject(
            Rejection.OUT_OF_RANGE,
            f"{label}={_show(value)} is beyond the range of a {datatype}",
        )
    if not math.isfinite(number):
        return _reject(Rejection.OUT_OF_RANGE, f"{label}={_show(number)} is not a finite number")
    return _check_range(label, number, spec, datatype, value) or _accept(number)


def _check_slow(spec: SignalSpec, value: object) -> Checked:
    """Check any value against ``spec`` with the full rules, arrays included."""
    element = _ELEMENT.get(spec.datatype)
    if element is None:
        return _check_scalar(spec, spec.datatype, spec.path, value)
    if not isinstance(value, list | tuple):
        return _wrong_type(spec.path, value, spec.datatype, "a list")
    items: list[Scalar] = []
    for index, item in enumerate(value):
        result = _check_scalar(spec, element, f"{spec.path}[{index}]", item)
        if result.rejection is not None:
            return result
        items.append(cast(Scalar, result.value))
    return _accept(tuple(items))


# --- fast checkers, one per signal -----------------------------------------------------------


def _bool_checker(slow: Checker) -> Checker:
    def check(value: object) -> Checked:
        if value is True:
            return _TRUE
        if value is False:
            return _FALSE
        return slow(value)

    return check


def _int_checker(low: float, high: float, slow: Checker) -> Checker:
    small = _SMALL_INTS

    def check(value: object) -> Checked:
        if type(value) is int and low <= value <= high:
            hit = small.get(value)
            return hit if hit is not None else _accept(value)
        return slow(value)

    return check


def _float_checker(low: float, high: float, slow: Checker) -> Checker:
    # NaN and ±inf fail the chained comparison because the bounds are finite.
    def check(value: object) -> Checked:
        if type(value) is float:
            if low <= value <= high:
                return _accept(value)
        elif type(value) is int and low <= value <= high:
            return _accept(float(value))
        return slow(value)

    return check


def _str_checker(slow: Checker) -> Checker:
    def check(value: object) -> Checked:
        if type(value) is str and "\x00" not in value:
            return _accept(value)
        return slow(value)

    return check


def _enum_checker(allowed: tuple[str, ...], slow: Checker) -> Checker:
    accepted = {text: Checked(text, None, "") for text in allowed}

    def check(value: object) -> Checked:
        if type(value) is str:
            hit = accepted.get(value)
            if hit is not None:
                return hit
        return slow(value)

    return check


def _bounds(spec: SignalSpec) -> tuple[float, float]:
    """Tightest of the spec's and the datatype's limits, for the fast path's one comparison."""
    low, high = _NATURAL[spec.datatype]
    if spec.min is not None:
        low = max(low, spec.min)
    if spec.max is not None:
        high = min(high, spec.max)
    return low, high


def _build_checker(spec: SignalSpec) -> Checker:
    def slow(value: object) -> Checked:
        return _check_slow(spec, value)

    family = _FAMILY.get(spec.datatype)
    if family == _BOOL:
        return _bool_checker(slow)
    if family == _INT:
        return _int_checker(*_bounds(spec), slow)
    if family == _FLOAT:
        return _float_checker(*_bounds(spec), slow)
    if family == _STR:
        if spec.allowed is not None:
            return _enum_checker(spec.allowed, slow)
        return _str_checker(slow)
    return slow  # arrays are rare; the thorough path is fast enough


def _validate_spec(spec: SignalSpec) -> SignalSpec:
    """Refuse specs the checkers cannot honour, naming the signal and the problem."""
    try:
        datatype = Datatype(spec.datatype)
    except ValueError:
        raise ConfigurationError(
            f"signal {spec.path}: unsupported datatype {spec.datatype!r}"
        ) from None
    if spec.kind not in _VSS_LEAF_KINDS:
        raise ConfigurationError(
            f"signal {spec.path}: kind must be sensor, actuator or attribute, not {spec.kind!r}"
        )
    base = _ELEMENT.get(datatype, datatype)
    if spec.allowed is not None and base != Datatype.STRING:
        raise ConfigurationError(
            f"signal {spec.path}: 'allowed' is only supported for string signals, not {datatype}"
        )
    if (spec.min is not None or spec.max is not None) and base not in _RANGED:
        raise ConfigurationError(f"signal {spec.path}: min/max make no sense for {datatype}")
    if spec.min is not None and spec.max is not None and spec.min > spec.max:
        raise ConfigurationError(
            f"signal {spec.path}: min {spec.min} is greater than max {spec.max}"
        )
    return spec


class Catalog:
    """Signals the platform understands: its own table plus, optionally, a VSS release's leaves.

    The own table wins where both define a path. Build it once at start-up and share it: it
    is immutable and safe to use from many threads.
    """

    __slots__ = ("_branches", "_checkers", "_floats", "_has_vss", "_ints", "_own", "_specs")

    def __init__(
        self, own: Iterable[SignalSpec], vss_leaves: Mapping[str, SignalSpec] | None = None
    ) -> None:
        own_specs = tuple(_validate_spec(spec) for spec in own)
        own_paths: dict[str, SignalSpec] = {}
        for spec in own_specs:
            if spec.path in own_paths:
                raise ConfigurationError(f"the signal table lists {spec.path} twice")
            own_paths[spec.path] = spec
        specs: dict[str, SignalSpec] = {}
        for path, spec in (vss_leaves or {}).items():
            if path != spec.path:
                raise ConfigurationError(f"VSS leaf keyed {path!r} describes {spec.path!r}")
            specs[path] = _validate_spec(spec)
        specs.update(own_paths)
        self._own = own_specs
        self._specs: Mapping[str, SignalSpec] = specs
        self._has_vss = vss_leaves is not None
        self._checkers: dict[str, Checker] = {
            path: _build_checker(spec) for path, spec in specs.items()
        }
        self._floats: dict[str, tuple[float, float]] = {
            path: _bounds(spec)
            for path, spec in specs.items()
            if _FAMILY.get(spec.datatype) == _FLOAT
        }
        self._ints: dict[str, tuple[float, float]] = {
            path: _bounds(spec)
            for path, spec in specs.items()
            if _FAMILY.get(spec.datatype) == _INT
        }
        branches: set[str] = set()
        for path in specs:
            parts = path.split(".")
            branches.update(".".join(parts[:depth]) for depth in range(1, len(parts)))
        self._branches = frozenset(branches)

    @classmethod
    def builtin(cls, vss_path: str | os.PathLike[str] | None = None) -> Catalog:
        """The platform's own table, plus every leaf of the VSS release at ``vss_path``.

        Raises :class:`ConfigurationError` when the release file is missing, unreadable or
        not a VSS release JSON.
        """
        from autocloud.domain.signal_table import SIGNALS  # here: signal_table imports this module

        leaves = load_vss_leaves(vss_path) if vss_path is not None else None
        return cls(SIGNALS, leaves)

    def spec(self, path: str) -> SignalSpec | None:
        """The spec of a leaf (own table first, then the VSS release), or ``None``."""
        return self._specs.get(path)

    @property
    def number_bounds(
        self,
    ) -> tuple[Mapping[str, tuple[float, float]], Mapping[str, tuple[float, float]]]:
        """The (low, high) limits of every float and of every integer signal.

        For bulk validation: a float value of a float signal, or an int value of an integer
        signal, within these limits is accepted as it is, exactly as `check` would accept it;
        anything else must go through `check`.
        """
        return self._floats, self._ints

    def check(self, path: str, value: object) -> Checked:
        """Validate and normalise one value of signal ``path``; never raises."""
        checker = self._checkers.get(path)
        if checker is None:
            return self._unknown(path)
        return checker(value)

    def _unknown(self, path: str) -> Checked:
        shown = _path(path)
        if path in self._branches:
            detail = f"{shown} is a VSS branch, not a signal; only leaves carry values"
        elif self._has_vss:
            detail = (
                f"{shown} is not a known signal: neither in the platform catalog nor a leaf "
                "of the configured VSS release"
            )
        else:
            detail = (
                f"{shown} is not a known signal: not in the platform catalog "
                "(no VSS release is configured)"
            )
        return _reject(Rejection.UNKNOWN_SIGNAL, detail)

    def __contains__(self, path: object) -> bool:
        return isinstance(path, str) and path in self._checkers

    def __len__(self) -> int:
        return len(self._checkers)

    def own(self) -> tuple[SignalSpec, ...]:
        """The platform's own table, in its original order."""
        return self._own

    def is_numeric(self, path: str) -> bool:
        """True for boolean and number signals, which history stores as numbers to downsample."""
        spec = self._specs.get(path)
        return spec is not None and spec.datatype in _NUMERIC


# --- reading a VSS release -------------------------------------------------------------------


def load_vss_leaves(path: str | os.PathLike[str]) -> dict[str, SignalSpec]:
    """Flatten a VSS release JSON (``vss_release_X.json``) into ``{dotted path: spec}``.

    Only leaves (sensor, actuator, attribute) are returned. Leaves typed with VSS structs
    (custom, non-primitive datatypes) are skipped, since the platform cannot check them.
    Raises :class:`ConfigurationError` when the file is missing, unreadable, not JSON or not
    shaped like a VSS release.
    """
    file = Path(path)
    try:
        raw = file.read_bytes()
    except FileNotFoundError:
        raise ConfigurationError(
            f"VSS release file {file} does not exist; point the setting at a "
            "vss_release_<version>.json from the COVESA VSS releases"
        ) from None
    except OSError as exc:
        raise ConfigurationError(
            f"cannot read VSS release file {file}: {exc.strerror or exc}"
        ) from exc
    try:
        document = json.loads(raw)
    except ValueError as exc:  # includes JSONDecodeError and UnicodeDecodeError
        raise ConfigurationError(
            f"VSS release file {file} is not valid JSON ({exc}); expected the JSON export "
            "of a VSS release"
        ) from exc
    if not isinstance(document, dict) or not document:
        raise ConfigurationError(
            f"{file} is not a VSS release: expected an object of root branches such as "
            '{"Vehicle": {"type": "branch", ...}}'
        )
    leaves: dict[str, SignalSpec] = {}
    for name, node in document.items():
        if not isinstance(node, dict) or node.get("type") != "branch":
            raise ConfigurationError(
                f"{file} is not a VSS release: top-level entry {_show(name)} is not a branch"
            )
        _collect(file, str(name), node, leaves)
    if not leaves:
        raise ConfigurationError(f"{file} is not a VSS release: it contains no signals")
    return leaves


def _collect(file: Path, path: str, node: Mapping[str, Any], leaves: dict[str, SignalSpec]) -> None:
    """Walk one node of the release tree, adding its leaves to ``leaves``."""
    kind = node.get("type")
    if kind == "branch":
        children = node.get("children", {})
        if not isinstance(children, dict):
            raise ConfigurationError(f"{file}: branch {path} has no children object")
        for name, child in children.items():
            if not isinstance(child, dict):
                raise ConfigurationError(f"{file}: node {path}.{name} is not an object")
            _collect(file, f"{path}.{name}", child, leaves)
        return
    if kind not in _VSS_LEAF_KINDS:
        return  # struct/property definitions and future node types carry no values
    datatype_name = node.get("datatype")
    if not isinstance(datatype_name, str):
        raise ConfigurationError(f"{file}: leaf {path} has no datatype")
    try:
        datatype = Datatype(datatype_name)
    except ValueError:
        return  # a struct-typed leaf; see load_vss_leaves
    leaves[path] = SignalSpec(
        path=path,
        datatype=datatype,
        unit=_text(file, path, node, "unit"),
        min=_number(file, path, node, "min"),
        max=_number(file, path, node, "max"),
        allowed=_allowed(file, path, node),
        kind=kind,
        description=_text(file, path, node, "description") or "",
    )


def _text(file: Path, path: str, node: Mapping[str, Any], key: str) -> str | None:
    value = node.get(key)
    if value is None or isinstance(value, str):
        return value
    raise ConfigurationError(f"{file}: leaf {path} has a malformed {key!r}: {_show(value)}")


def _number(file: Path, path: str, node: Mapping[str, Any], key: str) -> float | None:
    value = node.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigurationError(f"{file}: leaf {path} has a non-numeric {key!r}: {_show(value)}")
    return float(value)


def _allowed(file: Path, path: str, node: Mapping[str, Any]) -> tuple[str, ...] | None:
    value = node.get("allowed")
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise ConfigurationError(
            f"{file}: leaf {path} has an 'allowed' list that is not all strings: "
            f"{_show(value)}; only string enumerations are supported"
        )
    return tuple(value)
