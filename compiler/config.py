"""User configuration: ``$SKILLC_HOME/config.toml``.

    [trust]
    trusted_keys = ["ed25519:<base64 public key>", ...]
    require_signatures = true     # pull, install and build refuse unsigned/untrusted specs

    [cache]
    remote = "127.0.0.1:5000/team/skillc-cache"   # remote build cache (OCI registry)
    push = true                                    # also push what is built here
    insecure = true                                # plain HTTP (loopback only)
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from typing import Any

from jsonschema import Draft202012Validator

from .errors import UserError
from .home import home

SCHEMA: dict[str, Any] = {
    "type": "object", "additionalProperties": False,
    "properties": {
        "trust": {"type": "object", "additionalProperties": False, "properties": {
            "trusted_keys": {"type": "array", "items": {"type": "string",
                                                        "pattern": "^ed25519:[A-Za-z0-9+/=]+$"}},
            "require_signatures": {"type": "boolean"}}},
        "cache": {"type": "object", "additionalProperties": False, "properties": {
            "remote": {"type": "string", "minLength": 1}, "push": {"type": "boolean"},
            "insecure": {"type": "boolean"}}},
    },
}


@dataclass(frozen=True)
class Config:
    """The parsed configuration (defaults when there is no file)."""

    trusted_keys: list[str] = field(default_factory=list)
    require_signatures: bool = False
    cache: dict[str, Any] = field(default_factory=dict)


def load() -> Config:
    """Read ``config.toml``; a bad file is an error naming the field."""
    path = home().config
    if not path.exists():
        return Config()
    try:
        raw = tomllib.loads(path.read_text("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise UserError(f"{path}: invalid TOML: {exc}") from exc
    errors = [f"{path}: {'.'.join(map(str, e.absolute_path)) or '(top level)'}: {e.message}"
              for e in Draft202012Validator(SCHEMA).iter_errors(raw)]
    if errors:
        raise UserError("\n".join(sorted(errors)))
    trust = raw.get("trust", {})
    return Config(list(trust.get("trusted_keys", [])), bool(trust.get("require_signatures")),
                  dict(raw.get("cache", {})))
