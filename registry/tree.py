"""File trees as canonical listings, read from disk without leaving the root.

A tree is a sorted list of entries ``{path, type, mode, digest, size}`` where
``type`` is ``file`` or ``symlink`` (the digest of a symlink is the digest of
its target text) and ``mode`` keeps only what git keeps: 0o755 or 0o644. The
tree digest is the digest of the canonical JSON ``{"entries": [...]}``.
Directories are implied by their files.
"""

from __future__ import annotations

import itertools
import os
import posixpath
import stat
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from compiler.errors import PathError, TreeError, UserError

from .digest import digest_bytes, digest_json

# Names never copied into a tree: VCS data and caches (documented in README).
DEFAULT_IGNORE = frozenset(
    {".git", "__pycache__", ".pytest_cache", ".mypy_cache", ".ruff_cache", ".venv", ".hypothesis"}
)


@dataclass(frozen=True)
class Limits:
    """Caps on what a tree may hold; exceeding one is a located error."""

    max_files: int = 5000
    max_total_bytes: int = 64 * 1024 * 1024
    max_file_bytes: int = 16 * 1024 * 1024


DEFAULT_LIMITS = Limits()


@dataclass(frozen=True)
class Entry:
    """One file or symlink of a tree."""

    path: str
    type: str  # "file" | "symlink"
    mode: int
    digest: str
    size: int

    def to_json(self) -> dict[str, Any]:
        """The entry as it appears in the canonical listing."""
        return {"path": self.path, "type": self.type, "mode": self.mode,
                "digest": self.digest, "size": self.size}


@dataclass(frozen=True)
class Tree:
    """A canonical listing of entries, sorted by path."""

    entries: tuple[Entry, ...]

    @property
    def digest(self) -> str:
        """The tree's identity (see the module docstring)."""
        return digest_json(self.to_json())

    def to_json(self) -> dict[str, Any]:
        """The canonical listing."""
        return {"entries": [e.to_json() for e in self.entries]}

    def by_path(self) -> dict[str, Entry]:
        """Entries keyed by path."""
        return {e.path: e for e in self.entries}

    @staticmethod
    def from_json(data: Any) -> Tree:
        """Parse a listing, checking every path and field."""
        try:
            raw = data["entries"]
            entries = [Entry(check_relpath(str(e["path"])), str(e["type"]), int(e["mode"]),
                             str(e["digest"]), int(e["size"])) for e in raw]
        except (KeyError, TypeError, ValueError) as exc:
            raise UserError(f"malformed tree listing: {exc}") from exc
        for e in entries:
            if e.type not in ("file", "symlink") or e.mode not in (0o644, 0o755):
                raise UserError(f"malformed tree entry for {e.path}: {e.type} {oct(e.mode)}")
        return make_tree(entries)


def make_tree(entries: Iterable[Entry]) -> Tree:
    """A tree from entries, sorted; duplicate paths are an error."""
    ordered = sorted(entries, key=lambda e: e.path)
    for a, b in itertools.pairwise(ordered):
        if a.path == b.path:
            raise UserError(f"duplicate path in tree: {a.path}")
    return Tree(tuple(ordered))


def check_relpath(path: str) -> str:
    """Return ``path`` if it is a clean relative POSIX path inside its tree, else raise."""
    if not path or "\x00" in path or "\\" in path:
        raise PathError(f"invalid path {path!r}")
    if path.startswith("/"):
        raise PathError(f"absolute path not allowed: {path}")
    parts = path.split("/")
    if any(p in ("", ".", "..") for p in parts):
        raise PathError(f"path must be relative and stay inside its tree: {path}")
    return path


def symlink_stays_inside(path: str, target: str) -> bool:
    """True when a symlink at ``path`` pointing to ``target`` resolves inside the tree."""
    if target.startswith("/") or not target:
        return False
    joined = posixpath.normpath(posixpath.join(posixpath.dirname(path), target))
    return joined != ".." and not joined.startswith("../")


def file_mode(st_mode: int) -> int:
    """Normalize a file mode the way git does."""
    return 0o755 if st_mode & 0o111 else 0o644


def walk(root: Path, ignore: frozenset[str] = DEFAULT_IGNORE) -> Iterator[tuple[str, os.stat_result]]:
    """Yield ``(relpath, lstat)`` for every non-directory under ``root``, never following links."""
    stack = [""]
    while stack:
        rel = stack.pop()
        with os.scandir(root / rel if rel else root) as it:
            items = sorted(it, key=lambda d: d.name)
        for item in items:
            if item.name in ignore:
                continue
            sub = f"{rel}/{item.name}" if rel else item.name
            st = item.stat(follow_symlinks=False)
            if stat.S_ISDIR(st.st_mode):
                stack.append(sub)
            else:
                yield sub, st


def scan(root: Path, limits: Limits = DEFAULT_LIMITS, ignore: frozenset[str] = DEFAULT_IGNORE) -> Tree:
    """Read the tree under ``root``; refuse devices, escaping symlinks and oversize content."""
    entries: list[Entry] = []
    total = 0
    for rel, st in walk(root, ignore):
        entry = read_entry(root, rel, st, limits)
        total += entry.size
        entries.append(entry)
        if len(entries) > limits.max_files:
            raise TreeError(str(root), f"more than {limits.max_files} files")
        if total > limits.max_total_bytes:
            raise TreeError(str(root), f"more than {limits.max_total_bytes} bytes in all")
    return make_tree(entries)


def read_entry(root: Path, rel: str, st: os.stat_result, limits: Limits) -> Entry:
    """One entry, with the checks that make a tree safe to copy and hash."""
    full = root / rel
    if stat.S_ISLNK(st.st_mode):
        target = os.readlink(full)
        if not symlink_stays_inside(rel, target):
            raise TreeError(str(full), f"symlink points outside the tree ({target})")
        data = target.encode("utf-8", "surrogateescape")
        return Entry(rel, "symlink", 0o644, digest_bytes(data), len(data))
    if not stat.S_ISREG(st.st_mode):
        raise TreeError(str(full), "not a regular file, folder or symlink (device, fifo or socket)")
    if st.st_mode & (stat.S_ISUID | stat.S_ISGID):
        raise TreeError(str(full), "setuid/setgid files are not allowed")
    if st.st_size > limits.max_file_bytes:
        raise TreeError(str(full), f"{st.st_size} bytes, more than the {limits.max_file_bytes} "
                        "allowed per file")
    data = read_file_nofollow(full)
    return Entry(rel, "file", file_mode(st.st_mode), digest_bytes(data), len(data))


def read_file_nofollow(path: Path) -> bytes:
    """Read a regular file, refusing to follow a symlink at the last component."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    with os.fdopen(fd, "rb") as fh:
        return fh.read()
