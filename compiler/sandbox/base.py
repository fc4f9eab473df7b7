"""The Sandbox protocol and what every backend shares.

A sandbox is opened over a copy of a workspace tree. ``exec`` runs one command
inside it; file operations are confined to the workspace (relative paths only,
never through a symlink); ``export`` copies the resulting tree out; ``close``
removes everything the sandbox created, also after an error or a timeout.
Everything a backend creates carries ``PREFIX`` (names) or ``LABEL`` (docker
labels) so that ``skillc sandbox prune`` can find leftovers of a crashed run.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Protocol

from registry.tree import Tree

PREFIX = "skillc-sbx"
LABEL = "skillc.sandbox"
SANDBOX_UID = 65534
SANDBOX_GID = 65534
WORKDIR = "/workspace"
CUT_MARKER = "\n[... {n} bytes cut by skillc ...]\n"
BASE_ENV = {
    "PATH": "/usr/local/bin:/usr/bin:/bin",
    "HOME": "/tmp",
    "LANG": "C.UTF-8",
    "PYTHONDONTWRITEBYTECODE": "1",
    "SKILLC_SANDBOX": "1",
}


@dataclass(frozen=True)
class SandboxConfig:
    """Which backend, which image, and the limits every sandbox gets."""

    backend: str = "bwrap"
    image: str = "skillc-base:bookworm"
    runtime: str | None = None
    memory_mb: int = 1024
    pids: int = 256
    cpus: float = 1.0
    disk_mb: int = 1024
    exec_timeout: float = 300.0
    output_bytes: int = 256 * 1024
    file_size_mb: int = 256

    def to_json(self) -> dict[str, Any]:
        """The configuration as plain data."""
        return dict(vars(self))


@dataclass(frozen=True)
class ExecResult:
    """What one command did: exit code, output (capped), time, and why it ended."""

    exit_code: int
    stdout: str
    stderr: str
    duration: float
    reason: str  # "exit" | "timeout" | "oom" | "killed"
    stdout_cut: int = 0
    stderr_cut: int = 0

    @property
    def ok(self) -> bool:
        """True when the command exited with status 0."""
        return self.reason == "exit" and self.exit_code == 0

    def to_json(self) -> dict[str, Any]:
        """The result as plain data."""
        return dict(vars(self))


@dataclass
class OutputCap:
    """Keep the head and the tail of a stream, counting what falls in between."""

    limit: int
    head: bytearray = field(default_factory=bytearray)
    tail: bytearray = field(default_factory=bytearray)
    total: int = 0

    def feed(self, chunk: bytes) -> None:
        """Add bytes as they arrive."""
        self.total += len(chunk)
        room = self.limit // 2 - len(self.head)
        if room > 0:
            self.head += chunk[:room]
            chunk = chunk[room:]
        keep = self.limit - self.limit // 2
        self.tail += chunk[-keep:] if keep else b""
        if len(self.tail) > keep:
            del self.tail[:len(self.tail) - keep]

    @property
    def cut(self) -> int:
        """Bytes dropped."""
        return self.total - len(self.head) - len(self.tail)

    def text(self) -> str:
        """The kept output, with a marker where bytes were cut."""
        middle = CUT_MARKER.format(n=self.cut).encode() if self.cut else b""
        return (bytes(self.head) + middle + bytes(self.tail)).decode("utf-8", "replace")


def sandbox_env(extra: Mapping[str, str] | None) -> dict[str, str]:
    """The clean environment of a command: nothing from the host but what is passed."""
    env = dict(BASE_ENV)
    env.update(extra or {})
    return env


def new_name() -> str:
    """A unique name carrying the prefix and the owning process id (for prune)."""
    return f"{PREFIX}-{os.getpid()}-{os.urandom(4).hex()}"


def owner_alive(name: str) -> bool:
    """Whether the process that created ``name`` (see ``new_name``) still runs."""
    try:
        pid = int(name.split("-")[2])
    except (IndexError, ValueError):
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class Sandbox(Protocol):
    """One disposable sandbox over a workspace."""

    backend: str

    def provenance(self) -> dict[str, Any]:
        """Backend, runtime, image and its digest, limits — for the build record."""

    def exec(self, argv: Sequence[str], *, timeout: float | None = None,
             env: Mapping[str, str] | None = None, cwd: str = ".") -> ExecResult:
        """Run ``argv`` in the workspace; never raises for a failing command."""

    def read_file(self, path: str) -> bytes:
        """Read a regular file of the workspace."""

    def write_file(self, path: str, data: bytes, mode: int | None = None) -> None:
        """Create or replace a file (folders are created); mode None keeps an existing
        file's mode and gives a new one 0o644."""

    def delete_file(self, path: str) -> None:
        """Remove a file or symlink of the workspace."""

    def list_files(self) -> list[str]:
        """Every file and symlink of the workspace, sorted."""

    def export(self, dest: Path) -> Tree:
        """Copy the workspace to the empty folder ``dest``; refuse hostile content."""

    def close(self) -> None:
        """Remove everything this sandbox created. Safe to call twice."""

    def __enter__(self) -> Sandbox: ...

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None,
                 tb: TracebackType | None) -> None: ...


class Deadline:
    """A wall-clock budget for one command."""

    def __init__(self, seconds: float) -> None:
        self.start = time.monotonic()
        self.end = self.start + seconds

    def left(self) -> float:
        """Seconds remaining (never negative)."""
        return max(0.0, self.end - time.monotonic())

    def elapsed(self) -> float:
        """Seconds since the start."""
        return time.monotonic() - self.start
