"""Semantic versions and version ranges (``^1.2``, ``~1.2.0``, ``>=1.0, <2``, ``*``)."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

import semver

from .errors import UserError

_COMPARATOR = re.compile(r"^(\^|~|>=|<=|>|<|==|=|!=)?\s*v?(\d+(?:\.\d+){0,2}(?:[-+][0-9A-Za-z.+-]+)?)$")


def parse_version(text: str) -> semver.Version:
    """Parse a full semantic version or raise ``UserError``."""
    try:
        return semver.Version.parse(text)
    except (ValueError, TypeError) as exc:
        raise UserError(f"not a semantic version: {text!r} (expected e.g. 1.2.0)") from exc


def _pad(text: str) -> semver.Version:
    """``1`` and ``1.2`` mean ``1.0.0`` and ``1.2.0``."""
    core, rest = re.match(r"^(\d+(?:\.\d+){0,2})(.*)$", text).groups()  # type: ignore[union-attr]
    parts = core.split(".")
    return parse_version(".".join(parts + ["0"] * (3 - len(parts))) + rest)


@dataclass(frozen=True)
class Range:
    """A set of versions given as comparators that must all hold."""

    text: str
    comparators: tuple[tuple[str, semver.Version], ...]

    def contains(self, version: str | semver.Version) -> bool:
        """True when ``version`` satisfies every comparator."""
        v = version if isinstance(version, semver.Version) else parse_version(version)
        return all(_compare(v, op, bound) for op, bound in self.comparators)

    def best(self, versions: Iterable[str]) -> str | None:
        """The highest of ``versions`` in the range, preferring releases to pre-releases."""
        matching = [parse_version(v) for v in versions if self.contains(v)]
        releases = [v for v in matching if not v.prerelease]
        pool = releases or matching
        return str(max(pool)) if pool else None


def _compare(v: semver.Version, op: str, bound: semver.Version) -> bool:
    c = v.compare(bound)
    return {">=": c >= 0, "<=": c <= 0, ">": c > 0, "<": c < 0, "==": c == 0, "!=": c != 0}[op]


def parse_range(text: str) -> Range:
    """Parse a version range or raise ``UserError`` naming the part that is wrong."""
    stripped = text.strip()
    if stripped in ("", "*", "latest"):
        return Range(text, ())
    comparators: list[tuple[str, semver.Version]] = []
    for part in re.split(r"\s*,\s*|\s+(?=[<>=!^~])", stripped):
        m = _COMPARATOR.match(part)
        if not m:
            raise UserError(f"invalid version range {text!r}: cannot read {part!r}")
        op, ver = m.group(1) or "==", _pad(m.group(2))
        if op == "^":
            upper = ver.bump_major() if ver.major else (ver.bump_minor() if ver.minor
                                                        else ver.bump_patch())
            comparators += [(">=", ver), ("<", upper)]
        elif op == "~":
            comparators += [(">=", ver), ("<", ver.bump_minor())]
        else:
            comparators.append(("==" if op == "=" else op, ver))
    return Range(text, tuple(comparators))
