"""Three-way merge of file contents with ``git merge-file`` (no diff3 of our own).

``None`` stands for a file that does not exist on that side. The cases git
cannot express (added on one side, deleted on another) are decided here:
a file the user deleted stays deleted; a file one side changed and the other
deleted is a conflict that keeps the user's version.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from .errors import EnvironmentError_

MARKER_PREFIXES = (b"<<<<<<< ", b">>>>>>> ")


@dataclass(frozen=True)
class Merged:
    """The result for one file: its new content (None: absent) and whether it conflicts."""

    content: bytes | None
    conflict: bool = False
    note: str = ""


def merge3(base: bytes | None, ours: bytes | None, theirs: bytes | None,
           labels: tuple[str, str, str] = ("yours", "previous build", "new build")) -> Merged:
    """Merge the change base→theirs into ours."""
    if ours == theirs:
        return Merged(ours)
    if base == theirs:
        return Merged(ours)
    if base == ours:
        return Merged(theirs)
    if ours is None and base is not None:
        return Merged(None, note="deleted by you; stays deleted")
    if theirs is None or ours is None:
        return Merged(ours, conflict=True, note="changed on one side, deleted on the other")
    return _git_merge(base or b"", ours, theirs, labels)


def _git_merge(base: bytes, ours: bytes, theirs: bytes, labels: tuple[str, str, str]) -> Merged:
    git = shutil.which("git")
    if git is None:
        raise EnvironmentError_("git is needed for three-way merges: apt-get install git")
    with tempfile.TemporaryDirectory(prefix="skillc-merge-") as tmp:
        paths = []
        for name, data in (("ours", ours), ("base", base), ("theirs", theirs)):
            path = Path(tmp) / name
            path.write_bytes(data)
            paths.append(str(path))
        proc = subprocess.run([git, "merge-file", "-p", "-L", labels[0], "-L", labels[1],
                               "-L", labels[2], *paths], capture_output=True, check=False)
    if proc.returncode < 0 or proc.returncode > 127:
        return Merged(ours, conflict=True, note="cannot merge (binary file?); kept yours")
    return Merged(proc.stdout, conflict=proc.returncode > 0,
                  note=f"{proc.returncode} conflict(s)" if proc.returncode else "merged")


def has_markers(data: bytes) -> bool:
    """True when content still holds conflict markers."""
    lines = data.splitlines()
    return any(line.startswith(MARKER_PREFIXES[0]) for line in lines) and \
        any(line.startswith(MARKER_PREFIXES[1]) for line in lines)
