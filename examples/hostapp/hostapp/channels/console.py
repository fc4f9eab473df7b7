"""Talk to the assistant on stdin/stdout."""

from __future__ import annotations

import sys
import threading
from collections.abc import Mapping
from typing import Any, TextIO

from ..core import Message
from . import Channel, Handler


class ConsoleChannel(Channel):
    """Each input line is a message; each reply is printed."""

    name = "console"

    def __init__(self, stdin: TextIO = sys.stdin, stdout: TextIO = sys.stdout) -> None:
        self.stdin, self.stdout = stdin, stdout
        self._thread: threading.Thread | None = None

    def start(self, handler: Handler) -> None:
        self._thread = threading.Thread(target=self._loop, args=(handler,), daemon=True)
        self._thread.start()

    def _loop(self, handler: Handler) -> None:
        for line in self.stdin:
            if line.strip():
                reply = handler(Message("console", "console", "you", line.rstrip("\n")))
                print(reply, file=self.stdout, flush=True)

    def stop(self) -> None:
        self._thread = None


def create(config: Mapping[str, Any], env: Mapping[str, str]) -> ConsoleChannel:
    """Plugin factory."""
    return ConsoleChannel()
