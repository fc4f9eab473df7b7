"""The agent's tools, executed in the sandbox: bash, a text editor, and submit_integration.

The bash and editor tools use the tool types the Anthropic models are trained on
(``bash_20250124``, ``text_editor_20250728``); every agent — the model-driven
one, the reference agent and replay — goes through ``ToolBox.call``, so every
change to the workspace is in the transcript.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from compiler.errors import PathError, SkillcError
from compiler.prompts import render
from compiler.resources import schema
from compiler.sandbox import Sandbox
from compiler.sandbox.base import WORKDIR

from .base import Checker, Usage
from .transcript import Redactor, Transcript

MAX_TOOL_OUTPUT = 30_000
CUT = "\n[... {n} characters cut by skillc ...]\n"
BASH = "bash"
EDITOR = "str_replace_based_edit_tool"
SUBMIT = "submit_integration"


def tool_definitions() -> list[dict[str, Any]]:
    """The tools as the Messages API takes them."""
    return [
        {"type": "bash_20250124", "name": BASH},
        {"type": "text_editor_20250728", "name": EDITOR},
        {"name": SUBMIT,
         "description": "Submit the finished integration. Call it once the acceptance tests "
                        "pass; the input describes what the integration needs at run time.",
         "input_schema": submission_schema()},
    ]


def submission_schema() -> dict[str, Any]:
    """The JSON Schema of the agent's part of the manifest."""
    manifest = schema("manifest")
    return {"$schema": manifest["$schema"], **manifest["$defs"]["submission"]}


@dataclass(frozen=True)
class Outcome:
    """What a tool call returned to the agent."""

    text: str
    is_error: bool = False
    accepted: bool = False


def cut(text: str, limit: int = MAX_TOOL_OUTPUT) -> str:
    """Keep the head and tail of long output with a marker between."""
    if len(text) <= limit:
        return text
    half = limit // 2
    return text[:half] + CUT.format(n=len(text) - 2 * half) + text[-half:]


def relpath(path: str) -> str:
    """A workspace-relative path from what the model wrote (``/workspace/x`` or ``x``)."""
    path = path.strip()
    if path in (WORKDIR, WORKDIR + "/", ".", ""):
        return "."
    if path.startswith(WORKDIR + "/"):
        return path[len(WORKDIR) + 1:].rstrip("/")
    if path.startswith("/"):
        raise PathError(f"{path}: outside the workspace; paths are under {WORKDIR}")
    return path.rstrip("/")


class ToolBox:
    """Runs tool calls in one sandbox and records each in the transcript."""

    def __init__(self, sandbox: Sandbox, transcript: Transcript, redactor: Redactor,
                 check: Checker, usage: Usage, max_repairs: int = 3,
                 exec_timeout: float = 300.0) -> None:
        self.sandbox = sandbox
        self.transcript = transcript
        self.redactor = redactor
        self.check = check
        self.usage = usage
        self.max_repairs = max_repairs
        self.exec_timeout = exec_timeout
        self.submissions = 0
        self.accepted: dict[str, Any] | None = None
        self.last_errors: list[str] = []

    def call(self, name: str, tool_input: dict[str, Any], tool_id: str = "") -> Outcome:
        """Run one call; never raises for a mistake the agent can correct."""
        started = time.monotonic()
        try:
            if name == BASH:
                outcome = self._bash(tool_input)
            elif name == EDITOR:
                outcome = self._edit(tool_input)
            elif name == SUBMIT:
                outcome = self._submit(tool_input)
            else:
                outcome = Outcome(f"unknown tool {name!r}", is_error=True)
        except (SkillcError, KeyError, TypeError, ValueError) as exc:
            detail = f"missing input {exc}" if isinstance(exc, KeyError) else str(exc)
            outcome = Outcome(f"Error: {detail}", is_error=True)
        text = self.redactor.text(cut(outcome.text))
        outcome = Outcome(text, outcome.is_error, outcome.accepted)
        self.usage.tool_calls += 1
        self.transcript.event("tool", id=tool_id, name=name, input=tool_input, output=text,
                              is_error=outcome.is_error, accepted=outcome.accepted,
                              duration=round(time.monotonic() - started, 4))
        return outcome

    # -- bash ---------------------------------------------------------------

    def _bash(self, tool_input: dict[str, Any]) -> Outcome:
        if tool_input.get("restart"):
            return Outcome("tool has been restarted (each command runs in a fresh shell "
                           f"in {WORKDIR})")
        command = str(tool_input["command"])
        result = self.sandbox.exec(["bash", "-c", command], timeout=self.exec_timeout)
        text = result.stdout + (("\n" if result.stdout and result.stderr else "") + result.stderr
                                if result.stderr else "")
        if result.reason != "exit":
            text += f"\n[command ended by {result.reason} after {result.duration:.1f}s]"
        elif result.exit_code:
            text += f"\n[exit code {result.exit_code}]"
        return Outcome(text or "(no output)", is_error=not result.ok)

    # -- editor -------------------------------------------------------------

    def _edit(self, tool_input: dict[str, Any]) -> Outcome:
        command = tool_input["command"]
        path = relpath(str(tool_input["path"]))
        if command == "view":
            return self._view(path, tool_input.get("view_range"))
        if command == "create":
            text = str(tool_input["file_text"])
            self.sandbox.write_file(path, text.encode("utf-8"))
            return Outcome(f"File created successfully at: {WORKDIR}/{path}")
        if command == "str_replace":
            return self._replace(path, str(tool_input["old_str"]), str(tool_input.get("new_str", "")))
        if command == "insert":
            text = str(tool_input.get("insert_text", tool_input.get("new_str", "")))
            return self._insert(path, int(tool_input["insert_line"]), text)
        return Outcome(f"Error: unknown command {command!r} (view, create, str_replace, insert)",
                       is_error=True)

    def _read_text(self, path: str) -> str:
        data = self.sandbox.read_file(path)
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:
            raise PathError(f"{path}: not a UTF-8 text file") from None

    def _view(self, path: str, view_range: Any) -> Outcome:
        files = self.sandbox.list_files()
        prefix = "" if path == "." else path + "/"
        if path == "." or any(f.startswith(prefix) for f in files):
            shown = sorted({"/".join(f[len(prefix):].split("/")[:2]) for f in files
                            if f.startswith(prefix)})
            return Outcome(f"Files under {WORKDIR}/{prefix}:\n" + "\n".join(shown))
        lines = self._read_text(path).split("\n")
        start, end = 1, len(lines)
        if view_range:
            start, end = int(view_range[0]), int(view_range[1])
            end = len(lines) if end == -1 else end
        numbered = [f"{n:6}\t{lines[n - 1]}" for n in range(max(start, 1), min(end, len(lines)) + 1)]
        return Outcome("\n".join(numbered))

    def _replace(self, path: str, old: str, new: str) -> Outcome:
        text = self._read_text(path)
        count = text.count(old) if old else 0
        if count == 0:
            return Outcome(f"Error: no replacement was performed: old_str did not appear "
                           f"verbatim in {WORKDIR}/{path}.", is_error=True)
        if count > 1:
            lines = [n for n, line in enumerate(text.split("\n"), 1) if old.split("\n")[0] in line]
            return Outcome(f"Error: no replacement was performed: old_str appears {count} times "
                           f"(lines {lines}); make it unique.", is_error=True)
        self.sandbox.write_file(path, text.replace(old, new).encode("utf-8"))
        return Outcome(f"The file {WORKDIR}/{path} has been edited.")

    def _insert(self, path: str, line: int, new: str) -> Outcome:
        lines = self._read_text(path).split("\n")
        if not 0 <= line <= len(lines):
            return Outcome(f"Error: insert_line {line} is outside 0..{len(lines)}", is_error=True)
        lines[line:line] = new.split("\n")
        self.sandbox.write_file(path, "\n".join(lines).encode("utf-8"))
        return Outcome(f"The file {WORKDIR}/{path} has been edited.")

    # -- submit -------------------------------------------------------------

    def _submit(self, submission: dict[str, Any]) -> Outcome:
        self.submissions += 1
        errors = self.check(submission)
        self.last_errors = errors
        self.transcript.event("check", attempt=self.submissions, errors=errors)
        if not errors:
            self.accepted = submission
            return Outcome("Accepted: the integration passed validation.", accepted=True)
        left = self.max_repairs + 1 - self.submissions
        return Outcome(render("repair.md.j2", errors=errors, attempts_left=max(left, 0)),
                       is_error=True)

    @property
    def out_of_attempts(self) -> bool:
        """True when the agent may not submit again."""
        return self.accepted is None and self.submissions > self.max_repairs
