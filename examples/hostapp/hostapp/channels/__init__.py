"""Channels deliver messages to the assistant and carry its replies back."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable

from ..core import Message

Handler = Callable[[Message], str]


class Channel(ABC):
    """A source of messages; ``start`` must not block."""

    name: str = ""

    @abstractmethod
    def start(self, handler: Handler) -> None:
        """Begin delivering messages to ``handler``; replies go back the channel's own way."""

    @abstractmethod
    def stop(self) -> None:
        """Stop delivering and release resources."""
