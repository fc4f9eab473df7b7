"""Managed blocks: a skill's addition to a shared file, between marker lines.

    # >>> add-webhook
    ...
    # <<< add-webhook

``upsert_block`` (a jinja filter for reference templates) replaces the block in
place or appends it, so re-rendering over a file that already has it is
idempotent; ``remove_block`` lets uninstall take the block out even when other
skills or the user changed the rest of the file.
"""

from __future__ import annotations


def _markers(name: str, comment: str) -> tuple[str, str]:
    return f"{comment} >>> {name}", f"{comment} <<< {name}"


def _find(lines: list[str], name: str, comment: str) -> tuple[int, int] | None:
    start, end = _markers(name, comment)
    stripped = [line.strip() for line in lines]
    if start not in stripped:
        return None
    i = stripped.index(start)
    if end not in stripped[i + 1:]:
        return None
    return i, stripped.index(end, i + 1)


def upsert_block(current: str, name: str, body: str, comment: str = "#") -> str:
    """``current`` with the named block set to ``body``: in place if present, else appended."""
    start, end = _markers(name, comment)
    block = [f"{start}\n", *(line + "\n" for line in body.strip("\n").split("\n")), f"{end}\n"]
    lines = current.splitlines(keepends=True)
    found = _find(lines, name, comment)
    if found:
        i, j = found
        return "".join(lines[:i] + block + lines[j + 1:])
    if lines and not lines[-1].endswith("\n"):
        lines[-1] += "\n"
    separator = ["\n"] if lines and lines[-1].strip() else []
    return "".join(lines + separator + block)


def remove_block(current: str, name: str, comment: str = "#") -> str | None:
    """``current`` without the named block (and the blank line before it), or None if absent."""
    lines = current.splitlines(keepends=True)
    found = _find(lines, name, comment)
    if not found:
        return None
    i, j = found
    if i > 0 and not lines[i - 1].strip():
        i -= 1
    return "".join(lines[:i] + lines[j + 1:])
