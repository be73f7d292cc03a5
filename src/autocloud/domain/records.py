"""Plain values that move between the core, the services and the stores."""

from dataclasses import dataclass, field
from typing import Any, NamedTuple

from autocloud.domain.replay import SeqWindow

Value = bool | int | float | str | tuple[Any, ...] | None


@dataclass(frozen=True, slots=True)
class Brand:
    id: str
    name: str
    created_ms: int


@dataclass(frozen=True, slots=True)
class Vehicle:
    id: int
    vin: str
    brand: str
    model: str
    model_year: int | None
    manufacturer: str | None
    created_ms: int
    owners: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class Owner:
    id: int
    brand: str
    name: str
    email: str
    created_ms: int


@dataclass(frozen=True, slots=True)
class TokenInfo:
    id: int
    name: str
    role: str
    brand: str | None
    created_ms: int
    revoked_ms: int | None
    owner_id: int | None = None  # an owner's token: may command that owner's vehicles only


@dataclass(frozen=True, slots=True)
class VehicleRef:
    """What ingest needs to know of a sender: its row id and its tenant."""

    id: int
    brand: str


class Frame(NamedTuple):
    """The signals one vehicle sampled at one instant, keyed by signal id.

    Ingest's unit of work: one frame is one history row and one update of the vehicle's
    twin. A message of one instant (the usual case) makes exactly one frame, so the store can
    encode its body once for both, instead of handling twenty separate values twice. A named
    tuple: ingest makes one per message, and the cycle GC leaves tuples of plain values alone.
    """

    vehicle_id: int
    ts: int
    values: dict[int, Value]


@dataclass(slots=True)
class DeadLetter:
    """A refused message or value, kept with its reason and the raw payload."""

    received_ms: int
    topic: str
    reason: str
    detail: str
    payload: bytes
    vin: str | None = None
    brand: str | None = None
    id: int | None = None


@dataclass(slots=True)
class PresenceChange:
    """A vehicle's connection state, timed by the platform's clock (vehicle clocks drift).

    `replay` marks a retained state the broker replays on (re)subscription: it only fills in
    a vehicle the platform knows nothing of, and never overrides a newer live change.
    """

    vehicle_id: int
    online: bool
    since_ms: int
    sid: str | None
    replay: bool = False


@dataclass(slots=True)
class EventRecord:
    vehicle_id: int
    ts: int
    type: str
    data: dict[str, Any]
    received_ms: int


@dataclass(frozen=True, slots=True)
class Reply:
    """A vehicle's reply to the platform (a command result, a diagnostic response).

    `message` is the decoded v1 message; the store writes each kind with its own writer.
    """

    vehicle_id: int
    vin: str
    brand: str
    received_ms: int
    message: Any


@dataclass(slots=True)
class WriteBatch:
    """Everything one ingest batch makes durable, written in one transaction.

    `replies` and `extra` are how features beyond telemetry (commands, diagnostics, alerts)
    ride in the same transaction: the SQL store writes each record with the writer
    registered for its type, and refuses (raises) a type it has no writer for.
    """

    received_ms: int = 0
    history: list[Frame] = field(default_factory=list)  # one row per (vehicle, ts)
    twin: list[Frame] = field(default_factory=list)  # newest value per (vehicle, signal) wins
    events: list[EventRecord] = field(default_factory=list)
    presence: list[PresenceChange] = field(default_factory=list)
    windows: dict[tuple[int, str], SeqWindow] = field(default_factory=dict)
    dead_letters: list[DeadLetter] = field(default_factory=list)
    replies: list[Reply] = field(default_factory=list)
    extra: list[Any] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class TwinSignal:
    path: str
    value: Value
    ts: int
    received_ms: int


@dataclass(frozen=True, slots=True)
class DesiredSignal:
    path: str
    value: Value
    set_ms: int
    set_by: str


@dataclass(frozen=True, slots=True)
class Twin:
    """The digital twin: identity, connection state, reported and desired signals."""

    vehicle: Vehicle
    online: bool
    online_since_ms: int | None
    sid: str | None
    reported: tuple[TwinSignal, ...]
    desired: tuple[DesiredSignal, ...]


@dataclass(frozen=True, slots=True)
class HistoryRow:
    path: str
    ts: int
    value: Value


@dataclass(frozen=True, slots=True)
class Bucket:
    """Downsampled history: one time bucket of one numeric signal."""

    path: str
    start: int
    count: int
    min: float
    avg: float
    max: float
    last: float


@dataclass(frozen=True, slots=True)
class Page:
    """A page of a list; `next` is the cursor for the following page, None at the end."""

    items: tuple[Any, ...]
    next: str | None
