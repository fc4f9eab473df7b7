"""The reference agent: offline and deterministic.

It renders the spec's ``reference/`` implementation for this deployment
(sandboxed jinja2) and applies it through the same tools a model uses, so its
transcript has the same form and replays the same way.
"""

from __future__ import annotations

import shlex

from compiler import reference
from compiler.errors import AgentError, PathError
from compiler.sandbox import Sandbox

from .base import AgentResult, Budget, Checker, Task, Usage
from .tools import BASH, EDITOR, SUBMIT, ToolBox
from .transcript import Transcript


class ReferenceAgent:
    """Applies ``reference/`` and submits what the spec declares."""

    name = "reference"
    model: str | None = None

    def run(self, task: Task, sandbox: Sandbox, budget: Budget, transcript: Transcript,
            check: Checker) -> AgentResult:
        """Render, write, submit; a failed check is an error (there is no one to repair it)."""
        usage = Usage()
        tools = ToolBox(sandbox, transcript, task.redactor, check, usage, max_repairs=0,
                        exec_timeout=task.deployment.sandbox.exec_timeout)
        existed: set[str] = set()

        def current(path: str) -> str | None:
            try:
                text = sandbox.read_file(path).decode("utf-8")
            except (PathError, UnicodeDecodeError):
                return None
            existed.add(path)
            return text

        files = reference.render(task.spec, task.inputs, task.deployment.name, current)
        if not files:
            raise AgentError(f"{task.spec.name} has no reference/ implementation; the reference "
                             "agent needs one (use --agent anthropic)")
        for f in files:
            budget.check(usage)
            try:
                text = f.content.decode("utf-8")
            except UnicodeDecodeError:
                raise AgentError(f"reference/{f.path}: only UTF-8 text files can be applied") from None
            out = tools.call(EDITOR, {"command": "create", "path": f.path, "file_text": text})
            if out.is_error:
                raise AgentError(f"cannot write {f.path}: {out.text}")
            if f.mode & 0o111:
                tools.call(BASH, {"command": f"chmod +x {shlex.quote(f.path)}"})
        submission = {
            "summary": f"Reference implementation of {task.spec.name} "
                       f"{task.spec.version or ''}".strip(),
            "env": list(task.spec.requires_env),
            "hosts": list(task.spec.network),
            "dependencies": [],
            "entry_points": [{"kind": "file", "path": f.path} for f in files
                             if f.path not in existed],
        }
        out = tools.call(SUBMIT, submission)
        if not out.accepted:
            raise AgentError("the reference implementation does not pass validation:\n"
                             + "\n".join(f"- {e}" for e in tools.last_errors))
        return AgentResult(submission, usage)
