"""The Agent protocol: turn a spec into changes in a sandboxed copy of the fork.

An agent works only through the tools in ``tools`` (each call runs in the
sandbox and is recorded in the transcript) and ends by submitting the agent's
part of the integration manifest; the ``check`` callback validates a
submission (schema, policy, acceptance tests) and its errors go back to the
agent for another try.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from compiler.deployment import Deployment
from compiler.errors import AgentError
from compiler.sandbox import Sandbox
from compiler.spec import Spec

from .transcript import Redactor, Transcript

Checker = Callable[[dict[str, Any]], list[str]]


@dataclass(frozen=True)
class Prompt:
    """The rendered prompt: stable parts first so they can be cached across deployments."""

    system: str
    spec: str
    deployment: str

    def to_json(self) -> dict[str, str]:
        """The prompt as plain data."""
        return {"system": self.system, "spec": self.spec, "deployment": self.deployment}


@dataclass(frozen=True)
class Task:
    """What to build: the spec, for which deployment, with which inputs and prompt."""

    spec: Spec
    deployment: Deployment
    inputs: dict[str, Any]
    prompt: Prompt
    redactor: Redactor


@dataclass
class Usage:
    """Tokens and turns spent."""

    input_tokens: int = 0
    output_tokens: int = 0
    cache_creation_input_tokens: int = 0
    cache_read_input_tokens: int = 0
    turns: int = 0
    tool_calls: int = 0

    @property
    def total_tokens(self) -> int:
        """Every token billed, cached or not."""
        return (self.input_tokens + self.output_tokens + self.cache_creation_input_tokens
                + self.cache_read_input_tokens)

    def to_json(self) -> dict[str, int]:
        """Usage as plain data."""
        return {**vars(self), "total_tokens": self.total_tokens}


@dataclass
class Budget:
    """Limits on one agent run; ``check`` raises naming the budget that ran out."""

    max_turns: int
    max_tokens: int
    wall_time: float
    started: float = field(default_factory=time.monotonic)

    def check(self, usage: Usage) -> None:
        """Raise ``AgentError`` when a budget is exhausted."""
        if usage.turns >= self.max_turns:
            raise AgentError(f"budget exhausted: max_turns ({self.max_turns} turns used)")
        if usage.total_tokens >= self.max_tokens:
            raise AgentError(f"budget exhausted: max_tokens ({usage.total_tokens} of "
                             f"{self.max_tokens} tokens used)")
        elapsed = time.monotonic() - self.started
        if elapsed >= self.wall_time:
            raise AgentError(f"budget exhausted: wall_time ({elapsed:.0f}s of "
                             f"{self.wall_time:.0f}s)")


@dataclass
class AgentResult:
    """The accepted submission and what it cost."""

    submission: dict[str, Any]
    usage: Usage
    divergences: list[dict[str, Any]] = field(default_factory=list)


class Agent(Protocol):
    """Something that works in a sandbox until its submission is accepted."""

    name: str
    model: str | None

    def run(self, task: Task, sandbox: Sandbox, budget: Budget, transcript: Transcript,
            check: Checker) -> AgentResult:
        """Work in ``sandbox`` and return the accepted submission (or raise ``AgentError``)."""
