"""Render a spec's ``reference/`` implementation for one deployment.

Naming rule: ``reference/<path>.j2`` is rendered (sandboxed jinja2) to ``<path>``
in the fork; any other ``reference/<path>`` is copied as is. A template sees
``inputs`` (this deployment's values for the skill, defaults filled in),
``skill`` (name, version), ``deployment`` (its name) and ``current`` (the
file's text in the fork before the change, empty when it does not exist), so
a reference can extend a shared file instead of replacing it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from registry.tree import check_relpath

from .errors import UserError
from .prompts import render_untrusted
from .spec import Spec

PREFIX = "reference/"


@dataclass(frozen=True)
class RenderedFile:
    """One file the reference implementation writes."""

    path: str
    content: bytes
    mode: int


def target_path(spec_path: str) -> str:
    """Where ``reference/<path>[.j2]`` lands in the fork."""
    rel = spec_path.removeprefix(PREFIX)
    return check_relpath(rel[:-3] if rel.endswith(".j2") else rel)


def render(spec: Spec, inputs: dict[str, Any], deployment: str,
           current: Callable[[str], str | None]) -> list[RenderedFile]:
    """Every file of the reference implementation, rendered for these inputs."""
    out: list[RenderedFile] = []
    entries = spec.tree.by_path()
    for path in spec.files_under("reference"):
        entry = entries[path]
        if entry.type != "file":
            raise UserError(f"{spec.root / path}: reference files must be regular files")
        target = target_path(path)
        data = (spec.root / path).read_bytes()
        if path.endswith(".j2"):
            try:
                source = data.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise UserError(f"{spec.root / path}: template is not UTF-8 text") from exc
            text = render_untrusted(
                source, str(spec.root / path), inputs=inputs, deployment=deployment,
                skill={"name": spec.name, "version": spec.version}, current=current(target) or "")
            data = text.encode("utf-8")
        out.append(RenderedFile(target, data, entry.mode))
    return out


def defaults(spec: Spec, given: dict[str, Any]) -> dict[str, Any]:
    """The deployment's inputs with the schema's top-level defaults filled in."""
    props = spec.inputs_schema.get("properties", {})
    filled = {k: v["default"] for k, v in props.items() if isinstance(v, dict) and "default" in v}
    filled.update(given)
    return filled
