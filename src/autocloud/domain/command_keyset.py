"""Which keys a vehicle trusts, and what each may sign: roles, permissions and key lists.

What: every key a vehicle is enrolled with has a role (`KeyRole`): the platform's key may
sign every command of the table; an owner's app key only the commands the table marks for
owners; an app key an operator or admin enrolled only the commands an operator may send
(admin-only commands, the immobiliser, are signed by the platform alone). The role travels
with the key to the vehicle, which refuses a command its key may not sign (`not_permitted`).

The vehicle learns its keys as a `KeyList`: the current keys with their roles, a serial
(increasing per vehicle) and the platform's signature. The platform publishes a new list
(retained, on `vehicles/{VIN}/keys`) whenever a key is enrolled or revoked; the vehicle
checks it with `verify_key_list` and replaces its keys with the listed ones, so a revoked
key stops working on the car. Only a key with the platform role may sign a list, a replayed
older list is refused by its serial, and a list must keep at least one platform key.

The car answers each list on `vehicles/{VIN}/keys/result` (`protocol.KeyListResult`):
`applied` with the serial it now trusts, or `refused` with the reason `verify_key_list`
gave. The platform keeps, per vehicle, the highest serial the car confirmed and its last
refusal; `KeyListState` compares them with the newest serial sent (`status`: pending while
the car lags, refused when it refused the newest list).

Why pure: the vehicle side, the platform and the tests share these functions with no I/O.
"""

import enum
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import msgspec
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from autocloud.domain.access import Role
from autocloud.domain.command_signing import Rejection, Signer, b64url, key_id, unb64url
from autocloud.domain.commands import COMMANDS

KEY_LIST_VERSION = 1
NOT_PERMITTED = "not_permitted"
_ENCODER = msgspec.json.Encoder(order="sorted")


class KeyRole(enum.StrEnum):
    """What a key may sign; the values are stable API and wire strings."""

    PLATFORM = "platform"
    OPERATOR = "operator"  # an app key an operator or admin enrolled
    OWNER = "owner"  # an owner's app key


# Role -> the commands a key of that role may sign, from the command table.
PERMITTED: Mapping[KeyRole, frozenset[str]] = {
    KeyRole.PLATFORM: frozenset(s.name for s in COMMANDS),
    KeyRole.OPERATOR: frozenset(s.name for s in COMMANDS if s.min_role <= Role.OPERATOR),
    KeyRole.OWNER: frozenset(s.name for s in COMMANDS if s.owner_may),
}


def permits(role: KeyRole | None, name: str) -> bool:
    """Whether a key of `role` may sign command `name` (no role: nothing)."""
    return role is not None and name in PERMITTED[role]


class KeyEntry(msgspec.Struct, frozen=True):
    """One trusted key as a vehicle learns it: id, raw public key (hex) and role."""

    kid: str
    public_key: str
    role: KeyRole

    @property
    def raw(self) -> bytes:
        return bytes.fromhex(self.public_key)


def key_entries(listed: object) -> list[KeyEntry]:
    """Keys as `GET /v1/vehicles/{vin}/keys` lists them (other fields ignored), for a
    vehicle's provisioning. ValueError when they do not read as keys with roles."""
    try:
        return msgspec.convert(listed, list[KeyEntry])
    except msgspec.ValidationError as exc:
        raise ValueError(f"not a list of keys with roles: {exc}") from None


class KeyList(msgspec.Struct, forbid_unknown_fields=True):
    """The keys a vehicle is to trust, signed by the platform (`vehicles/{VIN}/keys`)."""

    v: int
    vin: str
    serial: int
    issued: int
    keys: list[KeyEntry]
    kid: str
    sig: str


_DECODER = msgspec.json.Decoder(KeyList)


def _canonical(vin: str, serial: int, issued: int, keys: Sequence[KeyEntry], kid: str) -> bytes:
    fields = {
        "v": KEY_LIST_VERSION,
        "vin": vin,
        "serial": serial,
        "issued": issued,
        "keys": [msgspec.structs.asdict(k) for k in keys],
        "kid": kid,
    }
    return _ENCODER.encode(fields)


def sign_key_list(
    signer: Signer, *, vin: str, serial: int, issued: int, keys: Iterable[KeyEntry]
) -> KeyList:
    """The platform's signed list of `keys` for `vin` (`serial` above the last one sent)."""
    listed = list(keys)
    sig = b64url(signer.private.sign(_canonical(vin, serial, issued, listed, signer.kid)))
    return KeyList(KEY_LIST_VERSION, vin, serial, issued, listed, signer.kid, sig)


def encode_key_list(key_list: KeyList) -> bytes:
    return msgspec.json.encode(key_list)


@dataclass(frozen=True, slots=True)
class KeyListVerdict:
    """What `verify_key_list` found: the list (when it parsed) and the reason to refuse it."""

    key_list: KeyList | None
    reason: str | None

    @property
    def ok(self) -> bool:
        return self.reason is None


def verify_key_list(
    payload: bytes,
    *,
    vin: str,
    keys: Mapping[str, bytes],
    roles: Mapping[str, KeyRole],
    last_serial: int,
) -> KeyListVerdict:
    """The vehicle's check of a key list: signed by a platform key it trusts, for this VIN,
    newer than the last it applied, and well formed (each kid names its key; at least one
    platform key stays)."""
    try:
        found = _DECODER.decode(payload)
    except (msgspec.DecodeError, msgspec.ValidationError, UnicodeDecodeError, RecursionError):
        return KeyListVerdict(None, Rejection.MALFORMED)
    if found.v != KEY_LIST_VERSION:
        return KeyListVerdict(found, Rejection.MALFORMED)
    public = keys.get(found.kid)
    if public is None:
        return KeyListVerdict(found, Rejection.UNKNOWN_KEY)
    if roles.get(found.kid) is not KeyRole.PLATFORM:
        return KeyListVerdict(found, NOT_PERMITTED)
    signed = _canonical(found.vin, found.serial, found.issued, found.keys, found.kid)
    try:
        Ed25519PublicKey.from_public_bytes(public).verify(unb64url(found.sig), signed)
    except (InvalidSignature, ValueError):
        return KeyListVerdict(found, Rejection.BAD_SIGNATURE)
    if found.vin != vin:
        return KeyListVerdict(found, Rejection.WRONG_VIN)
    if found.serial <= last_serial:
        return KeyListVerdict(found, Rejection.REPLAYED_COUNTER)
    if not _well_formed(found.keys):
        return KeyListVerdict(found, Rejection.MALFORMED)
    return KeyListVerdict(found, None)


def _well_formed(entries: Sequence[KeyEntry]) -> bool:
    for entry in entries:
        try:
            raw = entry.raw
            Ed25519PublicKey.from_public_bytes(raw)
        except ValueError:
            return False
        if key_id(raw) != entry.kid:
            return False
    return any(e.role is KeyRole.PLATFORM for e in entries)


class KeyListSync(enum.StrEnum):
    """Where a vehicle stands with its key lists; the values are stable API strings."""

    NONE = "none"  # no list was sent yet: the car trusts the keys of its provisioning
    PENDING = "pending"  # the car has not confirmed the newest list (yet)
    APPLIED = "applied"  # the car confirmed the newest list
    REFUSED = "refused"  # the car refused the newest list (see the reason)


@dataclass(frozen=True, slots=True)
class KeyListState:
    """The newest key list sent to a vehicle and what the car answered."""

    serial: int | None  # the newest list's serial (None: none sent)
    applied_serial: int | None = None  # the highest serial the car confirmed it applied
    applied_ts: int | None = None  # vehicle time of that confirmation
    applied_ms: int | None = None  # platform receive time of it
    refused_serial: int | None = None  # the last list the car refused (None: unreadable)
    refused_reason: str | None = None  # None: the car never refused a list
    refused_ts: int | None = None
    refused_ms: int | None = None

    @property
    def status(self) -> KeyListSync:
        if self.serial is None:
            return KeyListSync.NONE
        if self.applied_serial is not None and self.applied_serial >= self.serial:
            return KeyListSync.APPLIED
        if self.refused_reason is not None and self._refusal_is_current():
            return KeyListSync.REFUSED
        return KeyListSync.PENDING

    def _refusal_is_current(self) -> bool:
        """The refusal answers the newest list: its serial, or (an unreadable list, no
        serial) it came after the last confirmation."""
        if self.refused_serial is not None:
            return self.refused_serial == self.serial
        return self.applied_ms is None or (self.refused_ms or 0) >= self.applied_ms

    @property
    def behind(self) -> int | None:
        """How many serials the car's confirmed list is behind the newest (None: none sent)."""
        if self.serial is None:
            return None
        return max(0, self.serial - (self.applied_serial or 0))
