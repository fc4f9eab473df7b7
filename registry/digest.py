"""Content identity: canonical JSON and algorithm-tagged sha256 digests.

The contract (stable across versions; build keys and tree digests depend on it):

* canonical JSON is ``json.dumps(value, sort_keys=True, separators=(",", ":"),
  ensure_ascii=False)`` encoded as UTF-8 — keys sorted, no whitespace, no NaN;
* a digest is ``"sha256:" + hexdigest`` of the exact bytes hashed.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

ALGORITHM = "sha256"
DIGEST_RE = re.compile(r"^sha256:[0-9a-f]{64}$")


def canonical_json(value: Any) -> bytes:
    """Serialize ``value`` in the canonical form described in the module docstring."""
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8")


def digest_bytes(data: bytes) -> str:
    """Return the tagged sha256 digest of ``data``."""
    return f"{ALGORITHM}:{hashlib.sha256(data).hexdigest()}"


def digest_json(value: Any) -> str:
    """Return the tagged digest of ``value``'s canonical JSON."""
    return digest_bytes(canonical_json(value))


def is_digest(text: str) -> bool:
    """True when ``text`` is a well-formed tagged sha256 digest."""
    return bool(DIGEST_RE.match(text))


def hex_of(digest: str) -> str:
    """The hex part of a tagged digest (raises ValueError on a malformed one)."""
    if not is_digest(digest):
        raise ValueError(f"not a sha256 digest: {digest!r}")
    return digest.split(":", 1)[1]
