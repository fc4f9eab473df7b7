"""/history [N] - the last N turns of this conversation."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..core import Memory, Message, Tool


class History(Tool):
    name = "history"
    description = "show the last N turns of this conversation"

    def run(self, args: str, message: Message, memory: Memory) -> str:
        limit = int(args) if args.isdigit() else 10
        turns = memory.recall(message.conversation, limit + 1)[:-1]  # not this request
        return "\n".join(f"{t.role}: {t.text}" for t in turns) or "(nothing yet)"


def create(config: Mapping[str, Any], env: Mapping[str, str]) -> History:
    """Plugin factory."""
    return History()
