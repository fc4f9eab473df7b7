"""The one exception tree of skillc.

    SkillcError                 anything skillc raises on purpose
    ├── UserError               bad input; the message is shown verbatim
    │   ├── SpecError           a spec folder that cannot be read (carries located problems)
    │   ├── DeploymentError     a deployment profile that cannot be read
    │   ├── NotFoundError       a spec, version, build or file that does not exist
    │   ├── PathError           a path that leaves its tree or is not allowed
    │   ├── TreeError           a file tree holding a device, an escaping symlink, too much
    │   └── ConflictError       an operation refused because of the state it found
    ├── EnvironmentError_       the machine lacks something (bwrap, dockerd, an image)
    ├── SandboxError            a sandbox failed underneath us
    ├── AgentError              the agent could not finish (budget, API, bad submission)
    ├── BuildFailed             validation rejected the result (carries the report)
    └── RegistryError           the local or remote registry is unusable
        └── CorruptionError     stored content does not match its digest

Foreign errors (docker, jsonschema, anthropic, sqlite, OSError) are wrapped where
they enter, with ``raise X(msg) from exc``; the CLI maps this tree to messages
and exit codes in one place.
"""

from __future__ import annotations

from dataclasses import dataclass


class SkillcError(Exception):
    """Root of every error skillc raises on purpose."""

    exit_code = 1


class UserError(SkillcError):
    """Bad input from the user; the message is shown as is."""


@dataclass(frozen=True)
class Problem:
    """One located finding: ``path:line: severity: message``."""

    path: str
    line: int
    severity: str  # "error" | "warning"
    message: str

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}" if self.line else self.path
        return f"{where}: {self.severity}: {self.message}"


class SpecError(UserError):
    """A spec folder that cannot be parsed; carries every located problem."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


class DeploymentError(UserError):
    """A deployment profile that cannot be read or does not validate."""


class NotFoundError(UserError):
    """Something the user named does not exist."""


class PathError(UserError):
    """A path that is absolute, climbs out with ``..``, or crosses a symlink."""


class TreeError(UserError):
    """A file tree holds something not allowed; ``where`` names the file."""

    def __init__(self, where: str, reason: str) -> None:
        self.where = where
        self.reason = reason
        super().__init__(f"{where}: {reason}")


class ConflictError(UserError):
    """The operation was refused because of the state it found."""


class EnvironmentError_(SkillcError):  # trailing underscore: the builtin keeps its name
    """The machine lacks something skillc needs; the message says how to fix it."""


class SandboxError(SkillcError):
    """A sandbox backend failed while running."""


class AgentError(SkillcError):
    """The agent could not produce an integration."""


class BuildFailed(SkillcError):
    """Validation rejected a build; ``build_id`` names the stored report."""

    def __init__(self, message: str, build_id: str | None = None) -> None:
        self.build_id = build_id
        super().__init__(message)


class RegistryError(SkillcError):
    """The registry cannot be used."""


class CorruptionError(RegistryError):
    """Stored content does not match its digest."""
