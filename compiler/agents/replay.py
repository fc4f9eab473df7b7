"""Replay: re-execute a recorded transcript's tool calls in a fresh sandbox.

Used to check that a stored build is reproducible and to rebuild offline. Every
tool call whose output differs from the recording is reported as a divergence;
the caller compares the resulting tree with the stored one.
"""

from __future__ import annotations

from typing import Any

from compiler.errors import AgentError
from compiler.sandbox import Sandbox

from .base import AgentResult, Budget, Checker, Task, Usage
from .tools import SUBMIT, ToolBox
from .transcript import Transcript

MAX_SHOWN = 2000


class ReplayAgent:
    """Plays back the ``tool`` events of a transcript, in order."""

    name = "replay"

    def __init__(self, events: list[dict[str, Any]]) -> None:
        self.calls = [e for e in events if e.get("type") == "tool"]
        start = next((e for e in events if e.get("type") == "start"), {})
        self.model: str | None = start.get("model")
        if not any(c.get("name") == SUBMIT for c in self.calls):
            raise AgentError("the transcript has no submit_integration call to replay")

    def run(self, task: Task, sandbox: Sandbox, budget: Budget, transcript: Transcript,
            check: Checker) -> AgentResult:
        """Re-run every call; return the accepted submission and the divergences."""
        usage = Usage()
        submits = sum(1 for c in self.calls if c.get("name") == SUBMIT)
        tools = ToolBox(sandbox, transcript, task.redactor, check, usage, max_repairs=submits,
                        exec_timeout=task.deployment.sandbox.exec_timeout)
        divergences = []
        for call in self.calls:
            budget.check(usage)
            out = tools.call(str(call["name"]), dict(call.get("input") or {}), str(call.get("id", "")))
            if out.text != call.get("output") or out.is_error != call.get("is_error"):
                divergences.append({"seq": call.get("seq"), "tool": call["name"],
                                    "expected": str(call.get("output"))[:MAX_SHOWN],
                                    "actual": out.text[:MAX_SHOWN]})
        if tools.accepted is None:
            raise AgentError("replay: no submission was accepted:\n"
                             + "\n".join(f"- {e}" for e in tools.last_errors))
        return AgentResult(tools.accepted, usage, divergences)
