"""Bearer tokens: ``sf.<id>.<secret>``. The id finds the row; only a scrypt hash of the
secret is stored, so a copy of the database opens no door."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
from dataclasses import dataclass

#: scrypt cost: ~16 MiB and tens of milliseconds per hash. Secrets are 256 random bits, so
#: the hash is a second wall, not the only one; the API caches verified tokens briefly.
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 1
SALT_BYTES = 16
PREFIX = "sf"
_FORMAT = re.compile(r"^sf\.([0-9a-f]{16})\.([A-Za-z0-9_-]{43})$")


@dataclass(frozen=True)
class Token:
    token_id: str
    secret: str

    def __str__(self) -> str:
        return f"{PREFIX}.{self.token_id}.{self.secret}"


def new_token() -> Token:
    return Token(os.urandom(8).hex(), _b64(os.urandom(32)))


def derived_token(key: bytes, purpose: str) -> Token:
    """The same token every time for the same purpose: a retried activity that writes a
    letter puts the same reply code in it (and issues no second one)."""
    digest = hmac.new(key, purpose.encode(), hashlib.sha512).digest()
    return Token(digest[:8].hex(), _b64(digest[8:40]))


def parse(text: str) -> Token | None:
    match = _FORMAT.match(text.strip())
    return Token(match.group(1), match.group(2)) if match else None


def hash_secret(secret: str, salt: bytes | None = None) -> str:
    salt = os.urandom(SALT_BYTES) if salt is None else salt
    digest = hashlib.scrypt(
        secret.encode(), salt=salt, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P, dklen=32
    )
    return f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${salt.hex()}${digest.hex()}"


def verify_secret(secret: str, stored: str) -> bool:
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        actual = hashlib.scrypt(
            secret.encode(), salt=bytes.fromhex(salt), n=int(n), r=int(r), p=int(p), dklen=32
        )
    except ValueError:
        return False
    return hmac.compare_digest(actual.hex(), digest)


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")
