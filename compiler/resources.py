"""Files shipped with skillc: JSON Schemas and prompt templates.

In a wheel the templates live at ``compiler/templates``; in a checkout they are
the top-level ``templates/`` folder beside the package.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

PACKAGE_DIR = Path(__file__).resolve().parent


def templates_dir() -> Path:
    """The folder holding the prompt templates."""
    packaged = PACKAGE_DIR / "templates"
    return packaged if packaged.is_dir() else PACKAGE_DIR.parent / "templates"


@functools.cache
def schema(name: str) -> dict[str, Any]:
    """Load ``compiler/schemas/<name>.schema.json``."""
    data: dict[str, Any] = json.loads((PACKAGE_DIR / "schemas" / f"{name}.schema.json").read_text())
    return data
