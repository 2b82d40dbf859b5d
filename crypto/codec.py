"""AES-256-GCM payload encryption: what keeps pupil data out of Temporal's histories.

Temporal stores every workflow input, update, signal, query result, activity input and
failure as ``Payload``s; anyone who can read the server's database or open the Web UI can
read them. With a ``KeyRing`` configured, every payload leaves the process encrypted with
the newest key and the key's id in its metadata, so keys can rotate: older ids still decrypt.
Payloads that are not ours (recorded before encryption was switched on, or written by another
client) pass through unchanged, so old histories still replay and read.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from temporalio.api.common.v1 import Payload
from temporalio.converter import (
    DataConverter,
    DefaultFailureConverterWithEncodedAttributes,
    PayloadCodec,
)

from workflows.converter import DATA_CONVERTER

ENCODING = b"binary/encrypted"
KEY_ID = "encryption-key-id"
NONCE_BYTES = 12
KEY_BYTES = 32  # AES-256
_KEY_ID_FORMAT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


class BadKeyRing(ValueError):
    """A key ring that cannot be used (malformed, duplicate ids, wrong length)."""


class UnknownKey(ValueError):
    """A payload encrypted with a key id this key ring does not hold."""


@dataclass(frozen=True, repr=False)
class KeyRing:
    """Named AES-256 keys, newest first: the first encrypts, all of them decrypt."""

    keys: tuple[tuple[str, bytes], ...]

    def __repr__(self) -> str:  # never the keys themselves, in a log line or a traceback
        return f"KeyRing(ids={[kid for kid, _ in self.keys]})"

    def __post_init__(self) -> None:
        if not self.keys:
            raise BadKeyRing("a key ring needs at least one key")
        ids = [kid for kid, _ in self.keys]
        if len(set(ids)) != len(ids):
            raise BadKeyRing("duplicate key id in the key ring")
        for kid, key in self.keys:
            if not _KEY_ID_FORMAT.match(kid):
                raise BadKeyRing(f"key id {kid!r} must be letters, digits, '.', '_' or '-'")
            if len(key) != KEY_BYTES:
                raise BadKeyRing(f"key {kid} must be {KEY_BYTES} bytes (AES-256), not {len(key)}")

    @property
    def current(self) -> tuple[str, bytes]:
        return self.keys[0]

    def key(self, kid: str) -> bytes | None:
        return dict(self.keys).get(kid)

    @classmethod
    def parse(cls, text: str) -> KeyRing:
        """``id:base64key`` entries separated by commas or new lines, newest first.
        Blank lines and ``#`` comments are ignored (a key file can say when a key was made)."""
        entries: list[tuple[str, bytes]] = []
        for raw in re.split(r"[,\n]", text):
            entry = raw.split("#", 1)[0].strip()
            if not entry:
                continue
            kid, sep, encoded = entry.partition(":")
            if not sep:
                raise BadKeyRing("each key is 'id:base64' (see `senflow keys new`)")
            try:
                key = base64.urlsafe_b64decode(_padded(encoded.strip()))
            except (binascii.Error, ValueError):
                raise BadKeyRing(f"key {kid.strip()} is not base64") from None
            entries.append((kid.strip(), key))
        return cls(tuple(entries))

    @classmethod
    def from_env(cls, env: Mapping[str, str], default_file: Path | None = None) -> KeyRing | None:
        """``SENFLOW_KEYS`` (the keys themselves) or ``SENFLOW_KEY_FILE`` (a file of them),
        else ``default_file`` when it exists (``senflow up`` writes one), else no encryption."""
        if env.get("SENFLOW_KEYS") and env.get("SENFLOW_KEY_FILE"):
            raise BadKeyRing("set SENFLOW_KEYS or SENFLOW_KEY_FILE, not both")
        if env.get("SENFLOW_KEYS"):
            return cls.parse(env["SENFLOW_KEYS"])
        if env.get("SENFLOW_KEY_FILE"):
            return cls.parse(Path(env["SENFLOW_KEY_FILE"]).read_text())
        if default_file is not None and default_file.exists():
            return cls.parse(default_file.read_text())
        return None


def new_key_entry(kid: str) -> str:
    """A fresh random key as a key-ring entry (``senflow keys new``)."""
    if not _KEY_ID_FORMAT.match(kid):
        raise BadKeyRing(f"key id {kid!r} must be letters, digits, '.', '_' or '-'")
    return f"{kid}:{base64.urlsafe_b64encode(os.urandom(KEY_BYTES)).decode().rstrip('=')}"


def _padded(text: str) -> str:
    return text + "=" * (-len(text) % 4)


class EncryptionCodec(PayloadCodec):
    """AES-256-GCM over each serialized payload; the key id rides in the metadata and is
    bound to the ciphertext as associated data, so a payload cannot be relabelled."""

    def __init__(self, ring: KeyRing) -> None:
        self.ring = ring
        self._ciphers = {kid: AESGCM(key) for kid, key in ring.keys}

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [self.encrypt(p) for p in payloads]

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [self.decrypt(p) for p in payloads]

    def encrypt(self, payload: Payload) -> Payload:
        kid, _ = self.ring.current
        nonce = os.urandom(NONCE_BYTES)
        sealed = self._ciphers[kid].encrypt(nonce, payload.SerializeToString(), kid.encode())
        return Payload(metadata={"encoding": ENCODING, KEY_ID: kid.encode()}, data=nonce + sealed)

    def decrypt(self, payload: Payload) -> Payload:
        if payload.metadata.get("encoding") != ENCODING:
            return payload  # not encrypted by us: recorded before keys were configured
        kid = payload.metadata.get(KEY_ID, b"").decode("ascii", "replace")
        cipher = self._ciphers.get(kid)
        if cipher is None:
            raise UnknownKey(f"payload encrypted with key {kid!r}, which this key ring lacks")
        try:
            plain = cipher.decrypt(
                payload.data[:NONCE_BYTES], payload.data[NONCE_BYTES:], kid.encode()
            )
        except InvalidTag:
            raise UnknownKey(f"payload does not decrypt with key {kid!r}") from None
        decoded = Payload()
        decoded.ParseFromString(plain)
        return decoded


def data_converter(ring: KeyRing | None) -> DataConverter:
    """senflow's converter; with keys, payloads and failure messages are encrypted too
    (DESIGN.md: without the encoded-attributes failure converter, error messages and stack
    traces stay in clear)."""
    if ring is None:
        return DATA_CONVERTER
    return dataclasses.replace(
        DATA_CONVERTER,
        payload_codec=EncryptionCodec(ring),
        failure_converter_class=DefaultFailureConverterWithEncodedAttributes,
    )


def encrypted(payloads: Iterable[Payload]) -> bool:
    """True when every payload is one of ours (tests and `senflow keys check`)."""
    return all(p.metadata.get("encoding") == ENCODING for p in payloads)
