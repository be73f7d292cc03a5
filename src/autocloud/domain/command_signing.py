"""Signed commands, modelled on Tesla's vehicle-command protocol.

What: the platform (or an owner's app) signs each command with Ed25519 over canonical bytes
of `{v, id, vin, name, params, issued, expires, counter, kid}`; the vehicle holds the public
keys it was enrolled with and `verify()`s every command before it acts: the key must be one
it knows (`unknown_key`), the signature must hold over exactly those fields (`bad_signature`,
so no parameter can be altered), the command must name this vehicle (`wrong_vin`, so one
car's command cannot be replayed to another), must not be past its expiry (`expired`), and its
counter must be above the last one seen from that key (`replayed_counter`, so a captured
command cannot be sent again). A message that does not parse is `malformed`.

Why pure: the vehicle side and the tests use the same function with no I/O; key files are
read by an adapter (`adapters/keyfile.py`).
"""

import base64
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import msgspec
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

SIGNED_VERSION = 1
SIGNED_FIELDS = ("v", "id", "vin", "name", "params", "issued", "expires", "counter", "kid")
_ENCODER = msgspec.json.Encoder(order="sorted")


class Rejection:
    """Stable reason strings of `verify`."""

    MALFORMED = "malformed"
    UNKNOWN_KEY = "unknown_key"
    BAD_SIGNATURE = "bad_signature"
    WRONG_VIN = "wrong_vin"
    EXPIRED = "expired"
    REPLAYED_COUNTER = "replayed_counter"


class SignedCommand(msgspec.Struct, forbid_unknown_fields=True):
    """A command as it travels on `vehicles/{vin}/commands`."""

    v: int
    id: str
    vin: str
    name: str
    params: dict[str, Any]
    issued: int
    expires: int
    counter: int
    kid: str
    sig: str  # base64url Ed25519 signature of canonical(...)


_DECODER = msgspec.json.Decoder(SignedCommand)


def canonical(fields: Mapping[str, Any]) -> bytes:
    """The signed bytes: compact JSON of exactly SIGNED_FIELDS, keys sorted."""
    return _ENCODER.encode({k: fields[k] for k in SIGNED_FIELDS})


def raw_public_key(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(Encoding.Raw, PublicFormat.Raw)


def key_id(public_key: bytes) -> str:
    """A short, stable id of a 32-byte Ed25519 public key (hex of its SHA-256, 16 chars)."""
    return hashlib.sha256(public_key).hexdigest()[:16]


def parse_public_key(text: str) -> bytes:
    """A public key given as 64 hex characters or base64/base64url of 32 bytes."""
    text = text.strip()
    raw: bytes | None = None
    try:
        raw = bytes.fromhex(text)
    except ValueError:
        try:
            raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        except ValueError:
            raw = None
    if raw is None or len(raw) != 32:
        raise ValueError("a public key must be 32 raw Ed25519 bytes, as 64 hex characters")
    Ed25519PublicKey.from_public_bytes(raw)
    return raw


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass(frozen=True, slots=True)
class Signer:
    """One private key that signs commands; `kid` names its public half."""

    private: Ed25519PrivateKey

    @property
    def public(self) -> bytes:
        return raw_public_key(self.private.public_key())

    @property
    def kid(self) -> str:
        return key_id(self.public)

    def sign(
        self,
        *,
        id: str,
        vin: str,
        name: str,
        params: Mapping[str, Any],
        issued: int,
        expires: int,
        counter: int,
    ) -> SignedCommand:
        fields: dict[str, Any] = {
            "v": SIGNED_VERSION,
            "id": id,
            "vin": vin,
            "name": name,
            "params": dict(params),
            "issued": issued,
            "expires": expires,
            "counter": counter,
            "kid": self.kid,
        }
        sig = b64url(self.private.sign(canonical(fields)))
        return SignedCommand(**fields, sig=sig)


def encode(command: SignedCommand) -> bytes:
    return msgspec.json.encode(command)


def decode(payload: bytes) -> SignedCommand | None:
    """The command in `payload`, or None when it does not parse as one."""
    try:
        return _DECODER.decode(payload)
    except (msgspec.DecodeError, msgspec.ValidationError, UnicodeDecodeError, RecursionError):
        return None


def authenticate(command: SignedCommand, keys: Mapping[str, bytes]) -> str | None:
    """None when a known key signed exactly these fields; else the reason."""
    public = keys.get(command.kid)
    if public is None:
        return Rejection.UNKNOWN_KEY
    try:
        signature = unb64url(command.sig)
        Ed25519PublicKey.from_public_bytes(public).verify(
            signature, canonical(msgspec.structs.asdict(command))
        )
    except (InvalidSignature, ValueError):
        return Rejection.BAD_SIGNATURE
    return None


def check(command: SignedCommand, *, vin: str, now_ms: int, last_counter: int) -> str | None:
    """None when an authentic command is for `vin`, not expired and not replayed."""
    if command.vin != vin:
        return Rejection.WRONG_VIN
    if now_ms >= command.expires:
        return Rejection.EXPIRED
    if command.counter <= last_counter:
        return Rejection.REPLAYED_COUNTER
    return None


@dataclass(frozen=True, slots=True)
class Verdict:
    """What `verify` found: the command (when it parsed) and the reason to reject, if any."""

    command: SignedCommand | None
    reason: str | None

    @property
    def ok(self) -> bool:
        return self.reason is None


def verify(
    payload: bytes,
    *,
    vin: str,
    keys: Mapping[str, bytes],
    last_counters: Mapping[str, int],
    now_ms: int,
) -> Verdict:
    """The vehicle's whole check of one received command (see the module docstring)."""
    command = decode(payload)
    if command is None or command.v != SIGNED_VERSION:
        return Verdict(command, Rejection.MALFORMED)
    reason = authenticate(command, keys) or check(
        command, vin=vin, now_ms=now_ms, last_counter=last_counters.get(command.kid, 0)
    )
    return Verdict(command, reason)


def same_params(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    """Whether two parameter sets sign to the same bytes. Python's `==` is not enough:
    `1 == 1.0 == True`, but `1`, `1.0` and `true` are different JSON and different
    signatures."""
    return _ENCODER.encode(a) == _ENCODER.encode(b)


def new_private_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()
