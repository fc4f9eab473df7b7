"""The fork on disk, as install, regenerate and uninstall see it: read, write, hash files."""

from __future__ import annotations

import os

from registry.confined import ConfinedDir
from registry.digest import digest_bytes, digest_json
from registry.local import Registry
from registry.tree import Tree, check_relpath, make_tree

from .build import fork_tree
from .deployment import Deployment
from .errors import PathError
from .spec import Spec


class Fork:
    """One deployment's target folder."""

    def __init__(self, deployment: Deployment) -> None:
        self.deployment = deployment
        self.root = deployment.target
        self.files = ConfinedDir(self.root)

    def read(self, path: str) -> bytes | None:
        """A file's content, or None when it does not exist."""
        try:
            return self.files.read(check_relpath(path))
        except PathError:
            if (self.root / path).is_symlink():
                return os.readlink(self.root / path).encode()
            return None

    def digest(self, path: str) -> str | None:
        """A file's digest, or None."""
        data = self.read(path)
        return digest_bytes(data) if data is not None else None

    def write(self, path: str, data: bytes | None, mode: int | None = None) -> None:
        """Create, replace or (data None) delete a file."""
        if data is None:
            if (self.root / path).exists() or (self.root / path).is_symlink():
                self.files.delete(path)
            return
        self.files.write(path, data, mode)

    def context(self, spec: Spec, own: set[str], tree: Tree | None = None) -> str:
        """Digest of the fork files the skill may touch but did not write (what it builds on)."""
        tree = tree or fork_tree(self.deployment)
        return make_tree(e for e in tree.entries
                         if spec.may_touch(e.path) and e.path not in own).digest


def content(registry: Registry, tree: Tree | None, path: str) -> bytes | None:
    """A file's content in a stored tree, or None."""
    if tree is None:
        return None
    entry = tree.by_path().get(path)
    return registry.store.get(entry.digest) if entry else None


def mode_in(tree: Tree | None, path: str) -> int | None:
    """A file's mode in a stored tree, or None."""
    entry = tree.by_path().get(path) if tree else None
    return entry.mode if entry else None


def inputs_digest(inputs: dict[str, object]) -> str:
    """Identity of a skill's inputs (with defaults)."""
    return digest_json(inputs)
