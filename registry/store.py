"""Content-addressed objects: stored by sha256, written atomically, verified on every read.

Layout: ``objects/sha256/<2 hex>/<62 hex>``. A write goes to ``objects/tmp``,
is fsynced, renamed into place and its folder fsynced, so a crash leaves either
the whole object or none of it. Trees are stored as their canonical listing.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from compiler.errors import CorruptionError, NotFoundError

from .confined import ConfinedDir
from .digest import canonical_json, digest_bytes, hex_of, is_digest
from .tree import Tree


class ObjectStore:
    """Objects under one root folder."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.tmp = root / "tmp"

    def path(self, digest: str) -> Path:
        """Where an object lives."""
        h = hex_of(digest)
        return self.root / "sha256" / h[:2] / h[2:]

    def has(self, digest: str) -> bool:
        """Whether the object is stored (not verified)."""
        return self.path(digest).exists()

    def put(self, data: bytes) -> str:
        """Store bytes; returns their digest. Idempotent."""
        digest = digest_bytes(data)
        final = self.path(digest)
        if final.exists():
            return digest
        final.parent.mkdir(parents=True, exist_ok=True)
        self.tmp.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.tmp, prefix="obj-")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.chmod(tmp, 0o444)
            os.replace(tmp, final)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        _fsync_dir(final.parent)
        return digest

    def get(self, digest: str) -> bytes:
        """Read and verify an object."""
        if not is_digest(digest):
            raise NotFoundError(f"not an object digest: {digest!r}")
        try:
            data = self.path(digest).read_bytes()
        except FileNotFoundError:
            raise NotFoundError(f"object {digest} is not in the registry") from None
        actual = digest_bytes(data)
        if actual != digest:
            raise CorruptionError(f"object {digest} is corrupt: its content hashes to {actual} "
                                  f"({self.path(digest)})")
        return data

    def put_json(self, value: Any) -> str:
        """Store a JSON value in canonical form."""
        return self.put(canonical_json(value))

    def get_json(self, digest: str) -> Any:
        """Read a JSON object."""
        return json.loads(self.get(digest))

    def put_tree(self, root: Path, tree: Tree) -> str:
        """Store every entry of ``tree`` (read from ``root``) and the listing; returns its digest."""
        for entry in tree.entries:
            src = root / entry.path
            data = os.readlink(src).encode() if entry.type == "symlink" else src.read_bytes()
            if self.put(data) != entry.digest:
                raise CorruptionError(f"{src} changed while it was being stored")
        digest = self.put_json(tree.to_json())
        assert digest == tree.digest
        return digest

    def tree(self, digest: str) -> Tree:
        """Read a tree listing."""
        tree = Tree.from_json(self.get_json(digest))
        if tree.digest != digest:
            raise CorruptionError(f"tree {digest} is not a canonical listing")
        return tree

    def checkout(self, tree: Tree, dest: Path) -> None:
        """Write a stored tree into ``dest`` (verifying every object)."""
        out = ConfinedDir(dest)
        dest.mkdir(parents=True, exist_ok=True)
        for entry in tree.entries:
            data = self.get(entry.digest)
            if entry.type == "symlink":
                out.symlink(entry.path, data.decode())
            else:
                out.write(entry.path, data, entry.mode)

    def all(self) -> Iterator[str]:
        """Every stored object digest."""
        base = self.root / "sha256"
        if not base.exists():
            return
        for sub in sorted(base.iterdir()):
            for obj in sorted(sub.iterdir()):
                yield f"sha256:{sub.name}{obj.name}"

    def delete(self, digest: str) -> None:
        """Remove an object (garbage collection only)."""
        self.path(digest).unlink(missing_ok=True)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
