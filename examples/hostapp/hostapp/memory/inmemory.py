"""Keep conversations in process memory (lost on restart)."""

from __future__ import annotations

import threading
import time
from collections import defaultdict, deque
from collections.abc import Mapping
from typing import Any

from ..core import Memory, Turn


class InMemory(Memory):
    """A bounded deque of turns per conversation."""

    def __init__(self, max_turns: int = 1000) -> None:
        self._turns: dict[str, deque[Turn]] = defaultdict(lambda: deque(maxlen=max_turns))
        self._lock = threading.Lock()

    def remember(self, conversation: str, role: str, text: str) -> None:
        with self._lock:
            self._turns[conversation].append(Turn(role, text, time.time()))

    def recall(self, conversation: str, limit: int = 20) -> list[Turn]:
        with self._lock:
            return list(self._turns[conversation])[-limit:] if limit > 0 else []


def create(config: Mapping[str, Any], env: Mapping[str, str]) -> InMemory:
    """Plugin factory."""
    return InMemory(int(config.get("max_turns", 1000)))
