"""Terminal rendering of ``skillc audit``."""

from __future__ import annotations

import json
from typing import Any

from rich.rule import Rule

from .app import out

TOOL_LINES = 12


def _head(title: str) -> None:
    out.print(Rule(title, align="left"))


def render(data: dict[str, Any], sections: set[str]) -> None:
    """Print the chosen sections of an audit."""
    b = data["build"]
    if "summary" in sections:
        _head(f"build {b['id']}")
        for label, value in (("skill", f"{b['spec_name']}@{b['spec_version']} {b['spec_digest']}"),
                             ("deployment", f"{b['deployment']} {b['deployment_digest']}"),
                             ("status", b["status"] + (f": {b['error']}" if b["error"] else "")),
                             ("build key", b["key"]), ("agent", f"{b['agent']} {b['model'] or ''}"),
                             ("sandbox", json.dumps({k: v for k, v in b["sandbox"].items()
                                                     if k != "limits"})),
                             ("usage", json.dumps(b["usage"])), ("timings", json.dumps(b["timings"]))):
            out.print(f"{label:<11}{value}", markup=False)
    if "prompt" in sections and data["prompt"]:
        for part in ("system", "spec", "deployment"):
            _head(f"prompt: {part}")
            out.print(data["prompt"][part], markup=False)
    if "transcript" in sections:
        _head("transcript")
        for event in data["transcript"]:
            _event(event)
    if "diff" in sections:
        _head("diff against the fork")
        out.print("".join(data["diff"]) or "(no changes)", markup=False)
    if "report" in sections and data["report"]:
        _head("validation")
        for check in data["report"]["checks"]:
            out.print(f"{check['name']:<11}{check['status']}", markup=False)
            for error in check["errors"]:
                out.print(f"  - {error}", markup=False)
            tail = check.get("detail", {}).get("output_tail")
            if tail:
                out.print("  " + "\n  ".join(tail.strip().splitlines()[-10:]), markup=False)


def _event(e: dict[str, Any]) -> None:
    kind = e["type"]
    if kind == "model":
        for block in e.get("content", []):
            if block.get("type") == "text":
                out.print(f"[{e['seq']}] model: {block['text']}", markup=False)
            elif block.get("type") == "tool_use":
                out.print(f"[{e['seq']}] model calls {block['name']}: "
                          f"{json.dumps(block.get('input'))[:300]}", markup=False)
    elif kind == "tool":
        shown = _tool_input(e)
        status = "error" if e.get("is_error") else "ok"
        out.print(f"[{e['seq']}] tool {e['name']} {shown} → {status}", markup=False)
        lines = str(e.get("output", "")).splitlines()
        for line in lines[:TOOL_LINES]:
            out.print(f"      {line}", markup=False)
        if len(lines) > TOOL_LINES:
            out.print(f"      [... {len(lines) - TOOL_LINES} more lines]", markup=False)
    elif kind == "check":
        errors = e.get("errors") or []
        out.print(f"[{e['seq']}] submission {e.get('attempt')}: "
                  + ("accepted" if not errors else f"{len(errors)} error(s)"), markup=False)
        for error in errors:
            out.print(f"      - {error.splitlines()[0]}", markup=False)
    elif kind == "validation":
        report = e.get("report", {})
        out.print(f"[{e['seq']}] validation {e.get('attempt')}: "
                  + ", ".join(f"{c['name']} {c['status']}" for c in report.get("checks", [])),
                  markup=False)
    elif kind in ("start", "end"):
        rest = {k: v for k, v in e.items() if k not in ("seq", "type", "ts")}
        out.print(f"[{e['seq']}] {kind} {json.dumps(rest)}", markup=False)


def _tool_input(e: dict[str, Any]) -> str:
    tool_input = e.get("input") or {}
    if e["name"] == "bash":
        return f"$ {tool_input.get('command', '')}"
    if e["name"] == "str_replace_based_edit_tool":
        return f"{tool_input.get('command')} {tool_input.get('path')}"
    return json.dumps(tool_input)[:200]
