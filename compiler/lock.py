"""``skillc.lock``: what is installed in a fork, and exactly what was applied.

JSON, in the fork's root. Per skill: the spec (name, version, digest, the
range asked for), the build (id, key, output tree — the merge base for the
next regenerate — and the key's parts), the skills it requires, and per file
the digest of the content as applied plus the content before the skill came
(to restore on uninstall). ``pending`` holds regenerations that stopped on
conflicts.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .errors import UserError

LOCK_FILE = "skillc.lock"
LOCK_VERSION = 1


@dataclass
class FileRecord:
    """One file a skill changed."""

    status: str  # "added" | "modified" | "deleted"
    digest: str | None  # content as applied (None: deleted)
    original: str | None  # content before the skill (None: did not exist)


@dataclass
class SkillRecord:
    """One installed skill."""

    name: str
    version: str
    digest: str
    range: str
    build: str
    build_key: str
    output_tree: str
    key: dict[str, Any]
    context: str
    requires: list[str] = field(default_factory=list)
    files: dict[str, FileRecord] = field(default_factory=dict)


@dataclass
class Lock:
    """The whole lock file."""

    deployment: str
    skills: dict[str, SkillRecord] = field(default_factory=dict)
    pending: dict[str, dict[str, Any]] = field(default_factory=dict)

    def record_write(self, path: str, digest: str | None) -> None:
        """skillc changed ``path``: every skill tracking it now expects this content."""
        for skill in self.skills.values():
            if path in skill.files:
                skill.files[path].digest = digest

    def dependents(self, name: str) -> list[str]:
        """Installed skills that require ``name``."""
        return sorted(s.name for s in self.skills.values() if name in s.requires)


def path_for(fork: Path) -> Path:
    """Where a fork's lock file lives."""
    return fork / LOCK_FILE


def load(fork: Path, deployment: str) -> Lock:
    """The fork's lock (an empty one when there is none)."""
    path = path_for(fork)
    if not path.exists():
        return Lock(deployment)
    try:
        data = json.loads(path.read_text("utf-8"))
        if data.get("lock_version") != LOCK_VERSION:
            raise UserError(f"{path}: lock_version {data.get('lock_version')} is not supported")
        skills = {}
        for name, raw in data["skills"].items():
            files = {p: FileRecord(**f) for p, f in raw.pop("files").items()}
            skills[name] = SkillRecord(**raw, files=files)
        return Lock(data["deployment"], skills, data.get("pending", {}))
    except (KeyError, TypeError, ValueError) as exc:
        raise UserError(f"{path}: not a valid skillc.lock ({exc})") from exc


def save(fork: Path, lock: Lock) -> None:
    """Write the lock atomically (sorted, stable, diff-friendly)."""
    data = {"lock_version": LOCK_VERSION, "deployment": lock.deployment,
            "skills": {n: asdict(s) for n, s in sorted(lock.skills.items())},
            "pending": lock.pending}
    path = path_for(fork)
    fd, tmp = tempfile.mkstemp(dir=fork, prefix=".skillc.lock.")
    with os.fdopen(fd, "w") as fh:
        json.dump(data, fh, indent=2, sort_keys=True)
        fh.write("\n")
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
