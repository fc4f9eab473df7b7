"""Validation of a build's result: manifest schema, policy, and the spec's acceptance tests.

Symlinks leaving the tree, setuid/setgid bits and device files never get this far:
reading the output tree refuses them, and the build reports that as a policy failure.

Acceptance runs in a fresh sandbox over the output tree, with the spec's own
``tests/`` copied in last (to ``.skillc/tests``), so nothing the agent did to
its copy of the tests counts.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator

from registry.tree import Tree

from .resources import schema
from .sandbox import SandboxConfig, open_sandbox
from .spec import Spec, matches

TESTS_DIR = ".skillc/tests"
PROTECTED = (".git/**", ".github/workflows/**", ".gitlab-ci.yml", ".circleci/**", ".ci/**",
             "Jenkinsfile", ".travis.yml", "azure-pipelines.yml", ".buildkite/**",
             "**/AGENTS.md", "AGENTS.md", "**/CLAUDE.md", "CLAUDE.md", ".cursorrules",
             ".github/copilot-instructions.md", "GEMINI.md", ".windsurfrules", "skillc.lock")
DEPENDENCY_FILES = ("requirements*.txt", "**/requirements*.txt", "pyproject.toml", "setup.py",
                    "setup.cfg", "Pipfile", "Pipfile.lock", "poetry.lock", "package.json",
                    "package-lock.json", "yarn.lock", "Gemfile", "go.mod", "Cargo.toml")
OUTPUT_TAIL = 4000


@dataclass
class Check:
    """One check's verdict."""

    name: str  # "schema" | "policy" | "acceptance"
    status: str  # "passed" | "failed" | "skipped"
    errors: list[str] = field(default_factory=list)
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass
class Report:
    """Every check of one build."""

    checks: list[Check]

    @property
    def passed(self) -> bool:
        """True when no check failed."""
        return all(c.status != "failed" for c in self.checks)

    def errors(self) -> list[str]:
        """Every error, prefixed with its check."""
        return [f"{c.name}: {e}" for c in self.checks for e in c.errors]

    def summary(self) -> str:
        """One line: each check and its status."""
        return ", ".join(f"{c.name} {c.status}" for c in self.checks)

    def to_json(self) -> dict[str, Any]:
        """The report as plain data."""
        return {"passed": self.passed, "checks": [vars(c) for c in self.checks]}


def check_schema(manifest: dict[str, Any]) -> Check:
    """The manifest against manifest.schema.json; every error with its JSON path."""
    validator = Draft202012Validator(schema("manifest"))
    errors = [f"{'/'.join(str(p) for p in e.absolute_path) or '(root)'}: {e.message}"
              for e in sorted(validator.iter_errors(manifest), key=lambda e: list(e.absolute_path))]
    return Check("schema", "failed" if errors else "passed", errors)


def host_allowed(host: str, allowed: Iterable[str]) -> bool:
    """Whether ``host`` (maybe with :port) is within ``permissions.network``."""
    name = host.split(":")[0].lower()
    for rule in allowed:
        rname, _, rport = rule.lower().partition(":")
        if rport and host.partition(":")[2] not in ("", rport):
            continue
        if rname == name or (rname.startswith("*.") and name.endswith(rname[1:])):
            return True
    return False


def check_policy(spec: Spec, base: Tree, output: Tree, manifest: dict[str, Any]) -> Check:
    """Changed paths, protected files, env and hosts, symlinks, declared dependencies."""
    errors: list[str] = []
    changed = sorted(changed_paths(base, output))
    for path in changed:
        if matches(path, PROTECTED) and not matches(path, spec.protected_allowed):
            errors.append(f"{path}: a protected file (CI, agent instructions, VCS, lock); the spec "
                          "does not allow changing it (permissions.protected)")
        elif not spec.may_touch(path):
            errors.append(f"{path}: changed, but outside permissions.paths "
                          f"({', '.join(spec.paths) or 'none'})")
    for name in manifest.get("env", []):
        if name not in spec.requires_env:
            errors.append(f"env {name}: used by the integration but not in requires.env")
    for host in manifest.get("hosts", []):
        if not host_allowed(host, spec.network):
            errors.append(f"host {host}: reached by the integration but not in "
                          "permissions.network")
    deps_changed = [p for p in changed if matches(p, DEPENDENCY_FILES)]
    if deps_changed and not manifest.get("dependencies"):
        errors.append(f"{', '.join(deps_changed)}: dependency files changed but the manifest "
                      "declares no dependencies")
    return Check("policy", "failed" if errors else "passed", errors, {"changed": changed})


def changed_paths(base: Tree, output: Tree) -> set[str]:
    """Paths added, modified or deleted between two trees."""
    a, b = base.by_path(), output.by_path()
    return {p for p in a.keys() | b.keys() if a.get(p) != b.get(p)}


_UNITTEST_RAN = re.compile(r"^Ran (\d+) tests? in", re.M)
_UNITTEST_END = re.compile(r"^(OK|FAILED)(?: \((.*)\))?\s*$", re.M)
_PYTEST_END = re.compile(r"=+ (.*?) in [\d.]+s")


def parse_counts(output: str) -> dict[str, int | None]:
    """Counts from unittest or pytest output, when the runner reports them."""
    counts: dict[str, int | None] = {"tests_run": None, "failures": None, "errors": None,
                                     "skipped": None}
    if m := _UNITTEST_RAN.search(output):
        counts["tests_run"] = int(m.group(1))
        counts.update(failures=0, errors=0, skipped=0)
        ends = _UNITTEST_END.findall(output)
        for part in (ends[-1][1].split(",") if ends and ends[-1][1] else []):
            key, _, value = part.strip().partition("=")
            if key in ("failures", "errors", "skipped") and value.isdigit():
                counts[key] = int(value)
    elif found := _PYTEST_END.findall(output):
        words = dict((k, int(v)) for v, k in re.findall(r"(\d+) (\w+)", found[-1]))
        counts.update(failures=words.get("failed", 0), errors=words.get("error", 0)
                      + words.get("errors", 0), skipped=words.get("skipped", 0))
        counts["tests_run"] = sum(words.get(k, 0) for k in ("passed", "failed"))
    return counts


def check_acceptance(spec: Spec, output_dir: Path, output: Tree, config: SandboxConfig) -> Check:
    """Run ``acceptance.command`` over the output in a fresh sandbox, the spec's tests last."""
    command = spec.acceptance_command
    if not command:
        return Check("acceptance", "skipped", detail={"reason": "the spec has no acceptance.command"})
    timeout = float(spec.get("acceptance", "timeout", default=None) or config.exec_timeout)
    with open_sandbox(config, output_dir, output) as box:
        for path in spec.files_under("tests"):
            entry = spec.tree.by_path()[path]
            if entry.type == "file":
                box.write_file(f"{TESTS_DIR}/{path.removeprefix('tests/')}",
                               (spec.root / path).read_bytes(), entry.mode)
        result = box.exec(["sh", "-c", command], timeout=timeout)
    text = result.stdout + result.stderr
    detail: dict[str, Any] = {"command": command, "exit_code": result.exit_code,
                              "reason": result.reason, "duration": result.duration,
                              **parse_counts(text), "output_tail": text[-OUTPUT_TAIL:]}
    if result.ok:
        return Check("acceptance", "passed", detail=detail)
    why = f"ended by {result.reason}" if result.reason != "exit" else f"exit code {result.exit_code}"
    counts = "" if detail["tests_run"] is None else \
        f" ({detail['tests_run']} run, {detail['failures']} failed, {detail['errors']} errors)"
    return Check("acceptance", "failed", [f"`{command}` {why}{counts}:\n{text[-1500:]}"], detail)


def acceptance_summary(check: Check) -> dict[str, Any]:
    """The manifest's ``acceptance`` object from the acceptance check."""
    keys = ("command", "exit_code", "reason", "tests_run", "failures", "errors", "skipped",
            "duration", "output_tail")
    return {"status": check.status, **{k: check.detail[k] for k in keys if k in check.detail}}
