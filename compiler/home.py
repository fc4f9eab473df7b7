"""Where skillc keeps its data: ``$SKILLC_HOME`` or the platform's user data folder."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import platformdirs


@dataclass(frozen=True)
class Home:
    """The data folder and the well-known paths inside it."""

    root: Path

    @property
    def objects(self) -> Path:
        """Content-addressed objects."""
        return self.root / "objects"

    @property
    def index(self) -> Path:
        """The SQLite index."""
        return self.root / "index.sqlite3"

    @property
    def keys(self) -> Path:
        """Signing keys."""
        return self.root / "keys"

    @property
    def images(self) -> Path:
        """Sandbox image records and microVM images (``$SKILLC_IMAGES`` overrides, so that
        several homes can share one built image set)."""
        override = os.environ.get("SKILLC_IMAGES")
        return Path(override).absolute() if override else self.root / "images"

    @property
    def config(self) -> Path:
        """User configuration (TOML)."""
        return self.root / "config.toml"


def default_root() -> Path:
    """The platform's user data folder for skillc."""
    return platformdirs.user_data_path("skillc")


def home() -> Home:
    """The active home, honouring ``SKILLC_HOME``."""
    override = os.environ.get("SKILLC_HOME")
    root = Path(override) if override else default_root()
    return Home(root.expanduser().absolute())
