"""File operations confined to a host folder: relative paths only, never through a symlink.

Every path is opened component by component from the root's file descriptor
with O_NOFOLLOW, so a symlink planted by sandboxed code cannot make host-side
code read or write outside the folder.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

from compiler.errors import PathError, TreeError

from .tree import DEFAULT_LIMITS, Limits, Tree, check_relpath, scan

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


class ConfinedDir:
    """A folder whose contents are untrusted (a sandbox workspace, an extracted archive)."""

    def __init__(self, root: Path, uid: int | None = None, gid: int | None = None,
                 limits: Limits = DEFAULT_LIMITS) -> None:
        self.root = root
        self.uid, self.gid = uid, gid
        self.limits = limits

    def _walk_to_parent(self, path: str, create: bool) -> tuple[int, str]:
        parts = check_relpath(path).split("/")
        fd = os.open(self.root, _DIR_FLAGS)
        try:
            for part in parts[:-1]:
                if create:
                    try:
                        os.mkdir(part, 0o755, dir_fd=fd)
                        self._chown(part, fd)
                    except FileExistsError:
                        pass
                try:
                    nxt = os.open(part, _DIR_FLAGS, dir_fd=fd)
                except OSError as exc:
                    if exc.errno in (errno.ELOOP, errno.ENOTDIR):
                        raise PathError(f"{path}: '{part}' is a symlink or not a folder") from exc
                    raise
                os.close(fd)
                fd = nxt
        except BaseException:
            os.close(fd)
            raise
        return fd, parts[-1]

    def _chown(self, name: str, dir_fd: int) -> None:
        if self.uid is not None and self.gid is not None:
            os.chown(name, self.uid, self.gid, dir_fd=dir_fd, follow_symlinks=False)

    def read(self, path: str) -> bytes:
        """Read a regular file."""
        dfd, name = self._walk_to_parent(path, create=False)
        try:
            fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK,
                         dir_fd=dfd)
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise PathError(f"{path}: is a symlink; not following it") from exc
            if exc.errno == errno.ENOENT:
                raise PathError(f"{path}: no such file") from exc
            raise
        finally:
            os.close(dfd)
        with os.fdopen(fd, "rb") as fh:
            st = os.fstat(fh.fileno())
            if not stat.S_ISREG(st.st_mode):
                raise PathError(f"{path}: not a regular file")
            if st.st_size > self.limits.max_file_bytes:
                raise PathError(f"{path}: {st.st_size} bytes, over the per-file limit")
            return fh.read()

    def write(self, path: str, data: bytes, mode: int | None = 0o644) -> None:
        """Create or replace a regular file, creating its folders (mode None: keep or 0o644)."""
        dfd, name = self._walk_to_parent(path, create=True)
        try:
            try:
                st = os.stat(name, dir_fd=dfd, follow_symlinks=False)
                if not stat.S_ISREG(st.st_mode):
                    raise PathError(f"{path}: exists and is not a regular file")
            except FileNotFoundError:
                pass
            fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC,
                         0o644 if mode is None else mode & 0o777, dir_fd=dfd)
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                if mode is not None:
                    os.fchmod(fh.fileno(), mode & 0o777)
                if self.uid is not None and self.gid is not None:
                    os.fchown(fh.fileno(), self.uid, self.gid)
        finally:
            os.close(dfd)

    def symlink(self, path: str, target: str) -> None:
        """Create a symlink (its target is checked when the tree is exported)."""
        dfd, name = self._walk_to_parent(path, create=True)
        try:
            os.symlink(target, name, dir_fd=dfd)
            self._chown(name, dfd)
        finally:
            os.close(dfd)

    def delete(self, path: str) -> None:
        """Remove a file or symlink."""
        dfd, name = self._walk_to_parent(path, create=False)
        try:
            st = os.stat(name, dir_fd=dfd, follow_symlinks=False)
            if stat.S_ISDIR(st.st_mode):
                raise PathError(f"{path}: is a folder")
            os.unlink(name, dir_fd=dfd)
        except FileNotFoundError:
            raise PathError(f"{path}: no such file") from None
        finally:
            os.close(dfd)

    def tree(self) -> Tree:
        """The current contents as a tree (refusing devices and escaping symlinks)."""
        return scan(self.root, self.limits, ignore=frozenset())

    def list(self) -> list[str]:
        """Every file and symlink path, sorted."""
        return [e.path for e in self.tree().entries]

    def copy_in(self, src: Path, tree: Tree) -> None:
        """Write the entries of ``tree`` (scanned from ``src``) into this folder."""
        for entry in tree.entries:
            if entry.type == "symlink":
                self.symlink(entry.path, os.readlink(src / entry.path))
            else:
                self.write(entry.path, (src / entry.path).read_bytes(), entry.mode)

    def export(self, dest: Path) -> Tree:
        """Copy the contents to ``dest`` (must not exist or be empty)."""
        tree = self.tree()
        dest.mkdir(parents=True, exist_ok=True)
        if any(dest.iterdir()):
            raise TreeError(str(dest), "export folder is not empty")
        out = ConfinedDir(dest, limits=self.limits)
        for entry in tree.entries:
            if entry.type == "symlink":
                dfd, name = self._walk_to_parent(entry.path, create=False)
                try:
                    out.symlink(entry.path, os.readlink(name, dir_fd=dfd))
                finally:
                    os.close(dfd)
            else:
                out.write(entry.path, self.read(entry.path), entry.mode)
        return tree
