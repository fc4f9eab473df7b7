"""A scripted Agent for pipeline tests: plays fixed tool calls through the real ToolBox."""

from __future__ import annotations

from typing import Any

from compiler.agents.base import AgentResult, Budget, Checker, Task, Usage
from compiler.agents.tools import ToolBox
from compiler.agents.transcript import Transcript
from compiler.errors import AgentError
from compiler.sandbox import Sandbox

Step = tuple[str, dict[str, Any]]


def write(path: str, text: str) -> Step:
    return ("str_replace_based_edit_tool", {"command": "create", "path": path, "file_text": text})


def sh(command: str) -> Step:
    return ("bash", {"command": command})


def submit(**fields: Any) -> Step:
    base = {"summary": "scripted", "env": [], "hosts": [], "dependencies": [], "entry_points": []}
    return ("submit_integration", {**base, **fields})


class ScriptedAgent:
    """Runs its steps; fails like a model that gives up when its submission is rejected."""

    name = "scripted"
    model: str | None = None

    def __init__(self, steps: list[Step]) -> None:
        self.steps = steps

    def run(self, task: Task, sandbox: Sandbox, budget: Budget, transcript: Transcript,
            check: Checker) -> AgentResult:
        usage = Usage()
        tools = ToolBox(sandbox, transcript, task.redactor, check, usage, max_repairs=0)
        for name, tool_input in self.steps:
            tools.call(name, tool_input)
        if tools.accepted is None:
            raise AgentError("validation failed:\n" + "\n".join(tools.last_errors))
        return AgentResult(tools.accepted, usage)
