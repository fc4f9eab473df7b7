"""hostapp.toml: the assistant's name, its channels, tools and memory."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

DEFAULT_PATH = Path("hostapp.toml")


class ConfigError(Exception):
    """hostapp.toml cannot be read."""


def load(path: Path = DEFAULT_PATH) -> dict[str, Any]:
    """Read the configuration (an empty one when the file does not exist)."""
    if not path.exists():
        return {}
    try:
        return tomllib.loads(path.read_text("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: {exc}") from exc


def section(config: dict[str, Any], *keys: str) -> dict[str, Any]:
    """A nested table, or an empty one."""
    value: Any = config
    for key in keys:
        value = value.get(key, {}) if isinstance(value, dict) else {}
    return value if isinstance(value, dict) else {}
