"""Webhook signatures, retry timing and URL rules: pure functions, no I/O.

Signature (as Stripe and Smartcar do it): HMAC-SHA256, keyed with the subscription's
secret, over ``f"{t}.{body}"`` where ``t`` is the send time in Unix seconds and ``body`` the
exact bytes of the request body. Sent as ``Autocloud-Signature: t=<t>,v1=<hex>``. Binding
the timestamp into the MAC lets a receiver refuse replays of an old delivery: it checks the
MAC, then that ``t`` is within its tolerance (default 5 minutes) of its own clock.

Retries back off exponentially with jitter ("equal jitter": half the delay fixed, half
random), so a receiver that was down is not hit by every sender at the same instant.

URLs must be http(s) with a host and no credentials; whether an address is private
(loopback, RFC 1918, link-local such as the 169.254.169.254 metadata service, CGNAT,
multicast, reserved) is decided here, the DNS lookup is the adapter's.
"""

import hashlib
import hmac
import ipaddress
import secrets
from collections.abc import Callable
from typing import Final
from urllib.parse import SplitResult, urlsplit

from autocloud.domain.errors import InvalidInput

HEADER: Final = "Autocloud-Signature"
TOLERANCE_S: Final = 300
SECRET_PREFIX: Final = "whsec_"
MAX_URL: Final = 2000


def new_secret() -> str:
    """A signing secret: 256 random bits, shown to the subscriber once."""
    return SECRET_PREFIX + secrets.token_urlsafe(32)


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """Hex HMAC-SHA256 of ``"{timestamp}." + body`` under `secret`."""
    signed = str(timestamp).encode() + b"." + body
    return hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()


def header(secret: str, timestamp: int, body: bytes) -> str:
    """The value of the `Autocloud-Signature` header."""
    return f"t={timestamp},v1={signature(secret, timestamp, body)}"


class BadSignature(ValueError):
    """A delivery whose signature header is missing, malformed, wrong or stale."""


def verify(
    secret: str, value: str | None, body: bytes, now_s: int, tolerance_s: int = TOLERANCE_S
) -> int:
    """Check a received signature header; return its timestamp or raise BadSignature.

    Any ``v1`` entry may match (a sender rotating secrets can send two); the timestamp
    must be within `tolerance_s` of `now_s` either way.
    """
    if not value:
        raise BadSignature(f"no {HEADER} header")
    timestamp: int | None = None
    candidates: list[str] = []
    for part in value.split(","):
        key, _, item = part.strip().partition("=")
        if key == "t" and item.isdigit():
            timestamp = int(item)
        elif key == "v1":
            candidates.append(item)
    if timestamp is None or not candidates:
        raise BadSignature(f"{HEADER} needs t=<seconds> and v1=<hex>")
    expected = signature(secret, timestamp, body)
    if not any(hmac.compare_digest(expected, c) for c in candidates):
        raise BadSignature("signature does not match the body")
    if abs(now_s - timestamp) > tolerance_s:
        raise BadSignature(f"timestamp {timestamp} is more than {tolerance_s} s from now")
    return timestamp


def backoff_s(attempt: int, base_s: float, max_s: float, rand: Callable[[], float]) -> float:
    """Wait after failed try number `attempt` (1-based): base * 2^(attempt-1), capped,
    then equal jitter: between half and all of it (`rand` gives [0, 1))."""
    delay = min(max_s, base_s * 2.0 ** min(attempt - 1, 62))
    return float(delay / 2 + delay / 2 * rand())


def check_url(url: str) -> SplitResult:
    """The parts of an acceptable webhook URL, or InvalidInput saying what is wrong."""
    if len(url) > MAX_URL:
        raise InvalidInput(f"webhook URL is longer than {MAX_URL} characters")
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https"):
        raise InvalidInput(f"webhook URL must start with http:// or https://, got {url!r}")
    if not parts.hostname:
        raise InvalidInput(f"webhook URL {url!r} has no host")
    if parts.username or parts.password:
        raise InvalidInput("webhook URL must not carry credentials; the signature authenticates")
    try:
        parts.port  # noqa: B018  (raises on a bad port)
    except ValueError:
        raise InvalidInput(f"webhook URL {url!r} has an invalid port") from None
    return parts


def is_private(address: str) -> bool:
    """True for any address that is not globally routable (see the module docstring)."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = _embedded_ipv4(ip)
        if embedded is not None and is_private(str(embedded)):
            return True  # e.g. NAT64 or 6to4 wrapping 10.0.0.1 reaches 10.0.0.1
    return not ip.is_global or ip.is_multicast


_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_NAT64_LOCAL = ipaddress.ip_network("64:ff9b:1::/48")


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address carries (mapped, 6to4, NAT64, Teredo), if any."""
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip.teredo is not None:
        return ip.teredo[1]
    if ip in _NAT64 or ip in _NAT64_LOCAL:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None
