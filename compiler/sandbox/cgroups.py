"""Per-sandbox cgroups for the bwrap backend: a process limit, a memory limit, OOM counts.

Works with the unified hierarchy (cgroup v2) and with the legacy ``pids`` and
``memory`` hierarchies (v1). Creating cgroups needs root; without it the bwrap
backend falls back to rlimits and ``skillc sandbox doctor`` says so.
"""

from __future__ import annotations

import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path

from compiler.errors import SandboxError

from .base import PREFIX, owner_alive

ROOT = Path("/sys/fs/cgroup")


@dataclass(frozen=True)
class Layout:
    """Where the pids and memory controllers live."""

    version: int
    pids: Path
    memory: Path


def detect(root: Path = ROOT) -> Layout | None:
    """The usable cgroup layout, or None (not root, not mounted, controllers missing)."""
    if os.geteuid() != 0 and root == ROOT:
        return None
    controllers = root / "cgroup.controllers"
    if controllers.exists():
        have = controllers.read_text().split()
        if {"pids", "memory"} <= set(have) and os.access(root, os.W_OK):
            return Layout(2, root, root)
        return None
    pids, memory = root / "pids", root / "memory"
    if (pids / "cgroup.procs").exists() and (memory / "cgroup.procs").exists() \
            and os.access(pids, os.W_OK) and os.access(memory, os.W_OK):
        return Layout(1, pids, memory)
    return None


class Cgroup:
    """One sandbox's cgroup(s)."""

    def __init__(self, layout: Layout, name: str) -> None:
        self.layout = layout
        self.name = name
        self.dirs = sorted({layout.pids / name, layout.memory / name})

    @classmethod
    def create(cls, layout: Layout, name: str, pids: int, memory_mb: int) -> Cgroup:
        """Make the cgroup with its process and memory (no swap) limits."""
        group = cls(layout, name)
        limit = memory_mb * 1024 * 1024
        try:
            if layout.version == 2:
                _enable_controllers(layout.pids)
            for d in group.dirs:
                d.mkdir()
            mem = layout.memory / name
            cls._set(layout.pids / name / "pids.max", pids)
            if layout.version == 2:
                cls._set(mem / "memory.max", limit)
                cls._set(mem / "memory.swap.max", 0, optional=True)
            else:
                cls._set(mem / "memory.limit_in_bytes", limit)
                cls._set(mem / "memory.memsw.limit_in_bytes", limit, optional=True)
        except OSError as exc:
            group.remove()
            raise SandboxError(f"cannot create cgroup {name}: {exc}") from exc
        return group

    @staticmethod
    def _set(path: Path, value: int, optional: bool = False) -> None:
        try:
            path.write_text(str(value))
        except OSError:
            if not optional:
                raise

    def add(self, pid: int) -> None:
        """Move a process (and its future children) into the cgroup."""
        for d in self.dirs:
            (d / "cgroup.procs").write_text(str(pid))

    def oom_kills(self) -> int:
        """How many processes the memory limit has killed so far."""
        memdir = self.layout.memory / self.name
        source = memdir / ("memory.events" if self.layout.version == 2 else "memory.oom_control")
        try:
            for line in source.read_text().splitlines():
                key, _, value = line.partition(" ")
                if key == "oom_kill":
                    return int(value)
        except OSError:
            pass
        return 0

    def pids(self) -> list[int]:
        """Processes still in the cgroup."""
        out: set[int] = set()
        for d in self.dirs:
            try:
                out.update(int(p) for p in (d / "cgroup.procs").read_text().split())
            except OSError:
                pass
        return sorted(out)

    def kill_all(self) -> None:
        """SIGKILL every process in the cgroup and wait until it is empty."""
        for _ in range(100):
            pids = self.pids()
            if not pids:
                return
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            time.sleep(0.01)

    def remove(self) -> None:
        """Kill what is left and remove the cgroup folders."""
        self.kill_all()
        for d in self.dirs:
            for _ in range(50):
                try:
                    d.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    time.sleep(0.02)


def _enable_controllers(root: Path) -> None:
    control = root / "cgroup.subtree_control"
    enabled = set(control.read_text().split())
    missing = {"pids", "memory"} - enabled
    if missing:
        control.write_text(" ".join(f"+{c}" for c in sorted(missing)))


def leftovers(layout: Layout | None, everything: bool = False) -> list[Path]:
    """Sandbox cgroups whose owner process is gone (or all of them)."""
    if layout is None:
        return []
    found: set[Path] = set()
    for base in {layout.pids, layout.memory}:
        found.update(p for p in base.glob(f"{PREFIX}-*") if everything or not owner_alive(p.name))
    return sorted(found)


def prune(layout: Layout | None, everything: bool = False) -> list[str]:
    """Remove leftover sandbox cgroups; returns their names."""
    names = sorted({p.name for p in leftovers(layout, everything)})
    for name in names:
        assert layout is not None
        Cgroup(layout, name).remove()
    return names
