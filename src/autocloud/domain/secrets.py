"""Machine secrets: vehicle MQTT credentials and API tokens.

Both are 256-bit random strings made by the platform, never chosen by people, so a single
SHA-256 is a sound way to store them: there is nothing to brute-force, and checking a
login stays cheap when thousands of vehicles reconnect at once (a slow password hash such
as scrypt would take minutes for a fleet's reconnect storm).
"""

import hashlib
import hmac
import secrets

TOKEN_PREFIX = "ac_"


def new_secret() -> str:
    """A fresh random secret for a vehicle credential."""
    return secrets.token_urlsafe(32)


def new_token() -> str:
    """A fresh API bearer token; the prefix makes leaked tokens easy to scan for."""
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def digest(secret: str) -> str:
    """The stored form of a secret."""
    return hashlib.sha256(secret.encode()).hexdigest()


def matches(secret: str, stored_digest: str) -> bool:
    """Constant-time comparison of a presented secret with its stored digest."""
    return hmac.compare_digest(digest(secret), stored_digest)
