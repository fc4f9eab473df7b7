"""/echo TEXT - repeat TEXT."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..core import Memory, Message, Tool


class Echo(Tool):
    name = "echo"
    description = "repeat the text"

    def run(self, args: str, message: Message, memory: Memory) -> str:
        return args


def create(config: Mapping[str, Any], env: Mapping[str, str]) -> Echo:
    """Plugin factory."""
    return Echo()
