"""Find plugins in a package folder and in entry points."""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from importlib.metadata import entry_points
from typing import Any

KINDS = ("channels", "tools", "memory")
Factory = Callable[..., Any]


def discover(kind: str) -> dict[str, Factory]:
    """Plugin name → ``create`` factory, for ``kind`` in KINDS; folder modules win over entry points."""
    if kind not in KINDS:
        raise ValueError(f"unknown plugin kind {kind!r}")
    found: dict[str, Factory] = {}
    for ep in entry_points(group=f"hostapp.{kind}"):
        found[ep.name] = ep.load()
    package = importlib.import_module(f"hostapp.{kind}")
    for info in pkgutil.iter_modules(package.__path__):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"hostapp.{kind}.{info.name}")
        create = getattr(module, "create", None)
        if callable(create):
            found[info.name] = create
    return found
