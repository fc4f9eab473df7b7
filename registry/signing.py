"""Ed25519 signatures over spec digests, keys on disk, and the trust check.

What is signed is the UTF-8 text ``skillc-spec-v1:<spec digest>`` — the digest
names the whole spec folder, so a signature covers every file of it. A key's id
is ``ed25519:`` and the first 16 hex digits of the sha256 of its raw public key.
Private keys are PKCS#8 PEM files written with mode 0600.
"""

from __future__ import annotations

import base64
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from compiler.errors import ConflictError, NotFoundError, UserError

PREFIX = "ed25519:"


def message(digest: str) -> bytes:
    """The bytes a spec signature signs."""
    return f"skillc-spec-v1:{digest}".encode()


def public_text(key: Ed25519PublicKey) -> str:
    """``ed25519:<base64 raw key>``: how public keys are written and trusted."""
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return PREFIX + base64.b64encode(raw).decode()


def parse_public(text: str) -> Ed25519PublicKey:
    """Read ``ed25519:<base64>``."""
    if not text.startswith(PREFIX):
        raise UserError(f"not an ed25519 public key: {text[:40]!r} (expected ed25519:<base64>)")
    try:
        return Ed25519PublicKey.from_public_bytes(base64.b64decode(text[len(PREFIX):], validate=True))
    except (ValueError, TypeError) as exc:
        raise UserError(f"not an ed25519 public key: {exc}") from exc


def key_id(public: str) -> str:
    """A short, stable name for a public key."""
    raw = base64.b64decode(public[len(PREFIX):])
    return PREFIX + hashlib.sha256(raw).hexdigest()[:16]


@dataclass(frozen=True)
class Signature:
    """One signature over a spec digest."""

    key_id: str
    signature: str  # base64
    public_key: str  # ed25519:<base64>

    def valid_for(self, digest: str) -> bool:
        """True when the signature verifies and the key id matches the key."""
        try:
            parse_public(self.public_key).verify(base64.b64decode(self.signature),
                                                 message(digest))
        except (InvalidSignature, UserError, ValueError):
            return False
        return key_id(self.public_key) == self.key_id


class KeyRing:
    """Private keys in ``$SKILLC_HOME/keys``."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def _path(self, name: str) -> Path:
        if not name or "/" in name or name.startswith("."):
            raise UserError(f"invalid key name {name!r}")
        return self.folder / f"{name}.key"

    def generate(self, name: str) -> str:
        """Create a key pair; returns the public key text. Never overwrites."""
        path = self._path(name)
        if path.exists():
            raise ConflictError(f"key {name!r} already exists ({path})")
        self.folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        key = Ed25519PrivateKey.generate()
        pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(pem)
        public = public_text(key.public_key())
        (self.folder / f"{name}.pub").write_text(public + "\n")
        return public

    def private(self, name: str) -> Ed25519PrivateKey:
        """Load a private key."""
        path = self._path(name)
        if not path.exists():
            raise NotFoundError(f"no signing key {name!r}; create one with `skillc keys generate "
                                f"{name}`")
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        if not isinstance(key, Ed25519PrivateKey):
            raise UserError(f"{path}: not an ed25519 private key")
        return key

    def sign(self, name: str, digest: str) -> Signature:
        """Sign a spec digest with a named key."""
        key = self.private(name)
        public = public_text(key.public_key())
        return Signature(key_id(public), base64.b64encode(key.sign(message(digest))).decode(),
                         public)

    def names(self) -> list[tuple[str, str]]:
        """(name, public key) of every key."""
        if not self.folder.exists():
            return []
        return [(p.stem, p.read_text().strip()) for p in sorted(self.folder.glob("*.pub"))]


def check_trust(digest: str, signatures: list[Signature], trusted: list[str]) -> tuple[bool, str]:
    """Whether a trusted key signed ``digest``; the message says why not."""
    valid = [s for s in signatures if s.valid_for(digest)]
    trusted_ids = {key_id(t) for t in trusted}
    if any(s.key_id in trusted_ids for s in valid):
        return True, "signed by a trusted key"
    if not signatures:
        return False, "it is not signed"
    if not valid:
        return False, "its signatures do not verify"
    return False, "it is signed only by untrusted keys: " + ", ".join(s.key_id for s in valid)
