"""The local registry: the object store and the index, and operations that span both.

Every operation writes its objects first and its index rows last, in one
transaction, so a crash at any point leaves either the whole operation or
objects nothing refers to yet (which ``gc`` removes and ``verify`` ignores).
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from compiler.errors import CorruptionError, RegistryError, SkillcError

from .index import Index, SpecRow
from .store import ObjectStore
from .tree import Tree


@dataclass(frozen=True)
class Problem:
    """One thing ``verify`` found wrong."""

    where: str
    message: str

    def __str__(self) -> str:
        return f"{self.where}: {self.message}"


class Registry:
    """Objects + index under one folder."""

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        self.store = ObjectStore(root / "objects")
        self.index = Index(root / "index.sqlite3")

    def close(self) -> None:
        """Close the index."""
        self.index.close()

    # -- specs -------------------------------------------------------------

    def add_spec(self, folder: Path, tree: Tree, row: SpecRow, body: str) -> bool:
        """Store a spec folder's tree, then record it; False if it was already there."""
        self.store.put_tree(folder, tree)
        return self.index.add_spec(row, body)

    def checkout_spec(self, row: SpecRow) -> Path:
        """A verified, read-only copy of a published spec, named after it (cached)."""
        hexd = row.digest.split(":")[1][:20]
        dest = self.root / "checkouts" / hexd / row.name
        if dest.exists():
            return dest
        tree = self.store.tree(row.digest)
        tmp = Path(tempfile.mkdtemp(dir=self.root, prefix="checkout-"))
        try:
            self.store.checkout(tree, tmp / row.name)
            dest.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.rename(tmp / row.name, dest)
            except OSError:
                if not dest.exists():  # another process did not win the race either
                    raise
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        return dest

    # -- integrity ---------------------------------------------------------

    def verify(self) -> list[Problem]:
        """Re-hash every object and check every reference; every problem found."""
        problems: list[Problem] = []
        for digest in self.store.all():
            try:
                self.store.get(digest)
            except CorruptionError as exc:
                problems.append(Problem(str(self.store.path(digest)), str(exc)))
        bad = {p.where for p in problems}
        for spec in self.index.all_specs():
            problems += self._check_tree(f"spec {spec.name}@{spec.version}", spec.digest, bad)
        for build in self.index.all_builds():
            where = f"build {build.id}"
            for field_name in ("manifest", "transcript", "report", "prompt"):
                digest = getattr(build, field_name)
                if digest:
                    problems += self._check_object(f"{where} {field_name}", digest, bad)
            for field_name in ("base_tree", "output_tree"):
                digest = getattr(build, field_name)
                if digest:
                    problems += self._check_tree(f"{where} {field_name}", digest, bad)
        return problems

    def _check_object(self, where: str, digest: str, bad: set[str]) -> list[Problem]:
        if not self.store.has(digest):
            return [Problem(where, f"missing object {digest}")]
        if str(self.store.path(digest)) in bad:
            return [Problem(where, f"refers to corrupt object {digest}")]
        return []

    def _check_tree(self, where: str, digest: str, bad: set[str]) -> list[Problem]:
        problems = self._check_object(where, digest, bad)
        if problems:
            return problems
        try:
            tree = self.store.tree(digest)
        except SkillcError as exc:
            return [Problem(where, str(exc))]
        for entry in tree.entries:
            problems += self._check_object(f"{where} {entry.path}", entry.digest, bad)
        return problems

    def reachable(self) -> set[str]:
        """Every object the index refers to, directly or through a tree."""
        roots = [s.digest for s in self.index.all_specs()]
        trees = set(roots)
        objects: set[str] = set(self.index.pinned())
        for build in self.index.all_builds():
            objects.update(d for d in (build.manifest, build.transcript, build.report,
                                       build.prompt) if d)
            trees.update(d for d in (build.base_tree, build.output_tree) if d)
        for digest in trees:
            objects.add(digest)
            try:
                objects.update(e.digest for e in self.store.tree(digest).entries)
            except SkillcError:
                continue
        return objects

    def gc(self, grace_seconds: float = 3600.0) -> tuple[int, int]:
        """Delete unreferenced objects older than the grace period; returns (count, bytes)."""
        keep = self.reachable()
        cutoff = time.time() - grace_seconds
        count = size = 0
        for digest in list(self.store.all()):
            if digest in keep:
                continue
            path = self.store.path(digest)
            st = path.stat()
            if st.st_mtime > cutoff:
                continue  # may belong to an operation still in progress
            size += st.st_size
            count += 1
            self.store.delete(digest)
        for tmp in (self.store.tmp.glob("*") if self.store.tmp.exists() else []):
            if tmp.stat().st_mtime <= cutoff:
                tmp.unlink(missing_ok=True)
        shutil.rmtree(self.root / "checkouts", ignore_errors=True)
        return count, size


def open_registry(root: Path) -> Registry:
    """Open (creating) the registry at ``root``."""
    try:
        return Registry(root)
    except OSError as exc:
        raise RegistryError(f"{root}: cannot open the registry: {exc}") from exc

