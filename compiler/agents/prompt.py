"""Render the agent's prompt: system, the spec (stable, cacheable), then this deployment."""

from __future__ import annotations

import json
from typing import Any

from compiler.deployment import Deployment
from compiler.prompts import render
from compiler.sandbox.base import WORKDIR
from compiler.spec import Spec
from registry.tree import Tree

from .base import Prompt
from .transcript import Redactor

INSTRUCTION_FILES = ("AGENTS.md", "CLAUDE.md", ".cursorrules", "GEMINI.md",
                     ".github/copilot-instructions.md", ".windsurfrules")
MAX_SPEC_FILES_CHARS = 60_000
MAX_TREE_ENTRIES = 400


def spec_files(spec: Spec) -> list[dict[str, str]]:
    """The spec's documentation and tests as text (not its reference implementation)."""
    files, used = [], 0
    for entry in spec.tree.entries:
        if not entry.path.startswith(("references/", "tests/", "assets/")) or entry.type != "file":
            continue
        try:
            text = (spec.root / entry.path).read_text("utf-8")
        except UnicodeDecodeError:
            continue
        if used + len(text) > MAX_SPEC_FILES_CHARS:
            break
        used += len(text)
        files.append({"path": entry.path, "text": text})
    return files


def build(spec: Spec, deployment: Deployment, inputs: dict[str, Any], fork: Tree,
          read: Any, redactor: Redactor) -> Prompt:
    """The prompt for one build; ``read(path) -> bytes`` reads a fork file."""
    system = render("system.md.j2", workdir=WORKDIR)
    spec_part = render("task_spec.md.j2", spec=spec, front_matter=json.loads(
        json.dumps(spec.meta)), files=spec_files(spec), acceptance=spec.acceptance_command)
    instructions = []
    for entry in fork.entries:
        if entry.path in INSTRUCTION_FILES and entry.type == "file":
            instructions.append({"path": entry.path,
                                 "text": read(entry.path).decode("utf-8", "replace")})
    deployment_part = render(
        "task_deployment.md.j2", deployment=deployment.name, inputs=inputs, workdir=WORKDIR,
        env=list(spec.requires_env), paths=list(spec.paths), hosts=list(spec.network),
        tree=[e for e in fork.entries][:MAX_TREE_ENTRIES],
        tree_cut=len(fork.entries) > MAX_TREE_ENTRIES,
        instructions=instructions, obey=deployment.agent.obey_instructions)
    return Prompt(redactor.text(system), redactor.text(spec_part), redactor.text(deployment_part))
