"""Deployment profiles: one install of the host (a fork) and how to build skills for it."""

from __future__ import annotations

import difflib
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator

from registry.digest import digest_json

from .errors import DeploymentError
from .resources import schema
from .sandbox.base import SandboxConfig


@dataclass(frozen=True)
class AgentConfig:
    """Which agent builds, with which model and budgets."""

    backend: str = "reference"
    model: str = "claude-sonnet-4-5"
    base_url: str | None = None
    max_turns: int = 60
    max_tokens: int = 2_000_000
    wall_time: float = 1800.0
    max_repairs: int = 3
    max_retries: int = 4
    obey_instructions: bool = False


@dataclass(frozen=True)
class Deployment:
    """A parsed, validated deployment profile."""

    name: str
    path: Path
    target: Path
    sandbox: SandboxConfig
    agent: AgentConfig
    skills: dict[str, str] = field(default_factory=dict)
    inputs: dict[str, dict[str, Any]] = field(default_factory=dict)
    secrets: tuple[str, ...] = ()
    cache: dict[str, Any] = field(default_factory=dict)
    raw: dict[str, Any] = field(default_factory=dict)

    @property
    def digest(self) -> str:
        """Identity of the profile's content (not of the fork)."""
        return digest_json(self.raw)

    def inputs_for(self, skill: str) -> dict[str, Any]:
        """This deployment's inputs for one skill."""
        return dict(self.inputs.get(skill, {}))


def load(path: Path | str) -> Deployment:
    """Read and validate a deployment profile; every problem names the file and the field."""
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text("utf-8"))
    except FileNotFoundError:
        raise DeploymentError(f"{path}: no such deployment profile") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise DeploymentError(f"{path}: invalid TOML: {exc}") from exc
    problems = [f"{path}: {p}" for p in validate(raw)]
    if problems:
        raise DeploymentError("\n".join(problems))
    target = (path.parent / raw["target"]).resolve()
    if not target.is_dir():
        raise DeploymentError(f"{path}: target: {target} is not a folder (the fork)")
    return Deployment(
        name=raw["name"], path=path.resolve(), target=target,
        sandbox=SandboxConfig(**raw.get("sandbox", {})),
        agent=AgentConfig(**raw.get("agent", {})),
        skills=dict(raw.get("skills", {})), inputs=dict(raw.get("inputs", {})),
        secrets=tuple(raw.get("secrets", ())), cache=dict(raw.get("cache", {})), raw=raw)


def validate(raw: dict[str, Any]) -> list[str]:
    """Schema problems as ``field: message`` lines, with a did-you-mean for unknown keys."""
    out = []
    for err in Draft202012Validator(schema("deployment")).iter_errors(raw):
        where = ".".join(str(p) for p in err.absolute_path)
        if err.validator == "additionalProperties":
            known = list(err.schema.get("properties", {}))
            extra = sorted(set(err.instance) - set(known))
            for key in extra:
                near = difflib.get_close_matches(key, known, n=1, cutoff=0.7)
                hint = f" (did you mean '{near[0]}'?)" if near else ""
                out.append(f"{where + '.' if where else ''}{key}: unknown key{hint}")
        elif err.validator == "required":
            out.append(f"{where or '(top level)'}: {err.message}")
        else:
            out.append(f"{where}: {err.message}")
    return sorted(out)


def with_overrides(dep: Deployment, agent: str | None = None, sandbox: str | None = None,
                   runtime: str | None = None, model: str | None = None) -> Deployment:
    """The deployment with command-line overrides applied."""
    from dataclasses import replace

    sb = dep.sandbox
    if sandbox:
        sb = replace(sb, backend=sandbox)
    if runtime:
        sb = replace(sb, runtime=runtime)
    ag = dep.agent
    if agent:
        ag = replace(ag, backend=agent)
    if model:
        ag = replace(ag, model=model)
    return replace(dep, sandbox=sb, agent=ag)
