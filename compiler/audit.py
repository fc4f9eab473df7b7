"""Everything a build can explain about itself: spec, prompt, transcript, diff, report."""

from __future__ import annotations

import difflib
import json
from typing import Any

from registry.index import BuildRow
from registry.local import Registry
from registry.tree import Tree

MAX_DIFF_LINES = 4000


def gather(reg: Registry, build: BuildRow) -> dict[str, Any]:
    """The build's record and every stored artefact, as plain data."""
    store = reg.store

    def get(digest: str | None) -> Any:
        return store.get_json(digest) if digest else None

    transcript = []
    if build.transcript:
        for line in store.get(build.transcript).decode("utf-8").splitlines():
            transcript.append(json.loads(line))
    return {
        "build": {**vars(build), "sandbox": json.loads(build.sandbox)},
        "prompt": get(build.prompt),
        "manifest": get(build.manifest),
        "report": get(build.report),
        "transcript": transcript,
        "diff": diff(reg, build),
    }


def diff(reg: Registry, build: BuildRow) -> list[str]:
    """A unified diff of the build's changes against the fork it started from."""
    if not build.manifest or not build.base_tree or not build.output_tree:
        return []
    manifest = reg.store.get_json(build.manifest)
    base, out = reg.store.tree(build.base_tree).by_path(), reg.store.tree(build.output_tree).by_path()
    lines: list[str] = []
    files = manifest["files"]
    changed = [f["path"] for f in files["added"] + files["modified"]] + files["deleted"]
    for path in sorted(changed):
        old = _text(reg, base.get(path)) if path in base else ""
        new = _text(reg, out.get(path)) if path in out else ""
        if old is None or new is None:
            lines.append(f"Binary file {path} differs")
            continue
        lines += difflib.unified_diff(old.splitlines(keepends=True), new.splitlines(keepends=True),
                                      f"a/{path}" if path in base else "/dev/null",
                                      f"b/{path}" if path in out else "/dev/null")
    if len(lines) > MAX_DIFF_LINES:
        lines = [*lines[:MAX_DIFF_LINES], f"[... {len(lines) - MAX_DIFF_LINES} more lines]\n"]
    return lines


def _text(reg: Registry, entry: Any) -> str | None:
    if entry is None:
        return ""
    data = reg.store.get(entry.digest)
    if entry.type == "symlink":
        return f"-> {data.decode()}\n"
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


def output_tree(reg: Registry, build: BuildRow) -> Tree:
    """The stored output tree of a build."""
    if not build.output_tree:
        from compiler.errors import NotFoundError

        raise NotFoundError(f"build {build.id} has no output (it failed before exporting)")
    return reg.store.tree(build.output_tree)
