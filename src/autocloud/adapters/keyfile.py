"""The platform's command-signing key: an Ed25519 private key in a PEM file under data_dir.

Generated once, on first start, with mode 0600 (created exclusively, so two processes never
write two different keys); read on every later start. Losing it means re-enrolling every
vehicle, so back it up with the database.
"""

import os
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    load_pem_private_key,
)

from autocloud.domain.command_signing import Signer, new_private_key
from autocloud.domain.errors import ConfigurationError


def load_or_create(path: Path) -> Signer:
    """The signer whose key is in `path`, generating the key first if the file is absent."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        pem = new_private_key().private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass  # another process made it meanwhile: use theirs
        else:
            with os.fdopen(fd, "wb") as out:
                out.write(pem)
    try:
        key = load_pem_private_key(path.read_bytes(), password=None)
    except (OSError, ValueError, TypeError) as exc:
        raise ConfigurationError(f"cannot read the command-signing key {path}: {exc}") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise ConfigurationError(f"{path} holds a {type(key).__name__}, not an Ed25519 key")
    return Signer(key)
