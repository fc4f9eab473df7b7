"""``python -m hostapp [hostapp.toml]``."""

import sys
from pathlib import Path

from .app import run

run(Path(sys.argv[1]) if len(sys.argv) > 1 else Path("hostapp.toml"))
