"""Messages, the tool and memory interfaces, and the assistant's message loop."""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Message:
    """One inbound message from a channel."""

    channel: str
    conversation: str
    sender: str
    text: str
    ts: float = field(default_factory=time.time)


@dataclass(frozen=True)
class Turn:
    """One remembered line of a conversation."""

    role: str  # "user" or "assistant"
    text: str
    ts: float


class Memory(ABC):
    """Where conversations are remembered."""

    @abstractmethod
    def remember(self, conversation: str, role: str, text: str) -> None:
        """Store one turn."""

    @abstractmethod
    def recall(self, conversation: str, limit: int = 20) -> list[Turn]:
        """The last ``limit`` turns of a conversation, oldest first."""

    def close(self) -> None:  # noqa: B027 - optional hook, a no-op by default
        """Release resources."""


class Tool(ABC):
    """A command the assistant runs for ``/name args``."""

    name: str = ""
    description: str = ""

    @abstractmethod
    def run(self, args: str, message: Message, memory: Memory) -> str:
        """Run the tool and return the reply text."""


class Assistant:
    """Turns each message into a reply: ``/tool args`` runs a tool, anything else is answered."""

    def __init__(self, name: str, tools: dict[str, Tool], memory: Memory) -> None:
        self.name = name
        self.tools = tools
        self.memory = memory

    def handle(self, message: Message) -> str:
        """Reply to one message and remember both sides."""
        self.memory.remember(message.conversation, "user", message.text)
        reply = self._respond(message)
        self.memory.remember(message.conversation, "assistant", reply)
        return reply

    def _respond(self, message: Message) -> str:
        text = message.text.strip()
        if not text.startswith("/"):
            seen = sum(1 for t in self.memory.recall(message.conversation, 1000) if t.role == "user")
            return f"{self.name} heard: {text} (message {seen} in this conversation)"
        command, _, args = text[1:].partition(" ")
        if command == "help":
            lines = [f"/{t.name} - {t.description}" for t in sorted(self.tools.values(),
                                                                     key=lambda t: t.name)]
            return "Commands:\n" + "\n".join(["/help - this list", *lines])
        tool = self.tools.get(command)
        if tool is None:
            return f"Unknown command /{command}. Try /help."
        try:
            return tool.run(args.strip(), message, self.memory)
        except Exception as exc:  # a broken tool must not take the host down
            return f"/{command} failed: {exc}"
