"""Tar archives of trees: written with fixed metadata, read with every member checked.

Reading refuses what could escape or exhaust the destination: absolute or ``..``
paths, symlinks leaving the tree, hard links, devices and fifos, and content
past the limits. Extraction goes through ``ConfinedDir``, which never follows a
symlink on the way.
"""

from __future__ import annotations

import io
import tarfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO

from compiler.errors import PathError, TreeError

from .confined import ConfinedDir
from .tree import DEFAULT_LIMITS, Limits, Tree, check_relpath, symlink_stays_inside


def tar_tree(root: Path, tree: Tree, uid: int = 0, gid: int = 0, prefix: str = "") -> bytes:
    """A tar of ``tree``'s entries read from ``root`` (mtime 0, fixed owner)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        dirs: set[str] = set()
        for entry in tree.entries:
            parts = entry.path.split("/")
            for i in range(1, len(parts)):
                d = "/".join(parts[:i])
                if d not in dirs:
                    dirs.add(d)
                    tf.addfile(_info(prefix + d, tarfile.DIRTYPE, 0o755, uid, gid))
            src = root / entry.path
            if entry.type == "symlink":
                info = _info(prefix + entry.path, tarfile.SYMTYPE, 0o777, uid, gid)
                info.linkname = src.readlink().as_posix()
                tf.addfile(info)
            else:
                data = src.read_bytes()
                info = _info(prefix + entry.path, tarfile.REGTYPE, entry.mode, uid, gid)
                info.size = len(data)
                tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _info(name: str, kind: bytes, mode: int, uid: int, gid: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.mode, info.uid, info.gid, info.mtime = kind, mode, uid, gid, 0
    return info


def chunk_reader(chunks: Iterable[bytes]) -> IO[bytes]:
    """A buffered binary file over an iterator of byte chunks (e.g. a docker archive stream)."""
    return io.BufferedReader(IterStream(chunks))


class IterStream(io.RawIOBase):
    """A raw readable file over an iterator of byte chunks."""

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self._it: Iterator[bytes] = iter(chunks)
        self._buf = b""

    def readable(self) -> bool:
        return True

    def readinto(self, b: bytearray | memoryview) -> int:  # type: ignore[override]
        while not self._buf:
            try:
                self._buf = next(self._it)
            except StopIteration:
                return 0
        n = min(len(b), len(self._buf))
        b[:n] = self._buf[:n]
        self._buf = self._buf[n:]
        return n


def extract(stream: IO[bytes], dest: Path, strip: str = "", limits: Limits = DEFAULT_LIMITS) -> Tree:
    """Extract a tar stream into ``dest`` (created), checking every member; returns the tree."""
    dest.mkdir(parents=True, exist_ok=True)
    out = ConfinedDir(dest, limits=limits)
    count = total = 0
    try:
        with tarfile.open(fileobj=stream, mode="r|*") as tf:
            for member in tf:
                name = member.name
                while name.startswith("./"):
                    name = name[2:]
                if name in (".", ""):
                    continue
                if strip:
                    if name.rstrip("/") == strip.rstrip("/"):
                        continue
                    if not name.startswith(strip):
                        raise TreeError(member.name, f"outside the expected folder {strip}")
                    name = name[len(strip):]
                name = name.rstrip("/")
                if not name:
                    continue
                where = member.name
                try:
                    check_relpath(name)
                except PathError as exc:
                    raise TreeError(where, str(exc)) from exc
                if member.isdir():
                    continue
                count += 1
                if count > limits.max_files:
                    raise TreeError(where, f"more than {limits.max_files} files")
                if member.issym():
                    if not symlink_stays_inside(name, member.linkname):
                        raise TreeError(where, f"symlink points outside the tree ({member.linkname})")
                    out.symlink(name, member.linkname)
                elif member.isreg():
                    if member.mode & 0o6000:
                        raise TreeError(where, "setuid/setgid files are not allowed")
                    total += member.size
                    if member.size > limits.max_file_bytes:
                        raise TreeError(where, f"{member.size} bytes, over the per-file limit")
                    if total > limits.max_total_bytes:
                        raise TreeError(where, f"more than {limits.max_total_bytes} bytes in all")
                    fh = tf.extractfile(member)
                    assert fh is not None
                    out.write(name, fh.read(), 0o755 if member.mode & 0o111 else 0o644)
                elif member.islnk():
                    raise TreeError(where, "hard links are not allowed")
                else:
                    raise TreeError(where, "device files, fifos and sockets are not allowed")
    except tarfile.TarError as exc:
        raise TreeError(str(dest), f"not a valid tar archive: {exc}") from exc
    return out.tree()
