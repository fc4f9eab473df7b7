"""The build pipeline: spec + deployment + fork → agent in a sandbox → validation → registry.

Build key (a contract; same key ⇒ the stored build is reused, no sandbox, no tokens):
``sha256`` over the canonical JSON (sorted keys, no whitespace, UTF-8) of::

    {"v": 1,
     "spec": <tree digest of the spec folder>,
     "inputs": <this skill's deployment inputs, schema defaults filled in>,
     "base": <tree digest of the fork files the skill may touch (permissions.paths)>,
     "templates": <tree digest of the prompt templates>,
     "agent": <agent backend>, "model": <model, null for offline agents>,
     "image": <digest of the sandbox image>,
     "compiler": <skillc version>}
"""

from __future__ import annotations

import json
import secrets
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator

from registry.digest import digest_json
from registry.index import BuildRow
from registry.local import Registry
from registry.tree import DEFAULT_IGNORE, Tree, make_tree, scan

from . import __version__, lint, reference
from .agents import make_agent
from .agents.base import Agent, Budget, Task
from .agents.prompt import build as build_prompt
from .agents.replay import ReplayAgent
from .agents.transcript import Redactor, Transcript, parse
from .catalog import enforce_trust
from .config import load as load_config
from .deployment import Deployment
from .errors import (
    AgentError,
    BuildFailed,
    DeploymentError,
    RegistryError,
    SkillcError,
    SpecError,
    TreeError,
)
from .prompts import templates_digest
from .sandbox import Sandbox, image_digest, open_sandbox
from .spec import Spec
from .validate import (
    Check,
    Report,
    acceptance_summary,
    check_acceptance,
    check_policy,
    check_schema,
)

KEY_VERSION = 1
FORK_IGNORE = DEFAULT_IGNORE | {".skillc", "skillc.lock"}
Progress = Callable[[str], None]


@dataclass(frozen=True)
class Plan:
    """Everything a build is keyed on, worked out before anything runs."""

    spec: Spec
    deployment: Deployment
    inputs: dict[str, Any]
    fork: Tree
    base: Tree
    key: str
    key_fields: dict[str, Any]


@dataclass
class Outcome:
    """A finished build: the stored row, whether it came from the cache, what replay found."""

    build: BuildRow
    cached: bool
    manifest: dict[str, Any] | None = None
    report: dict[str, Any] | None = None
    divergences: list[dict[str, Any]] = field(default_factory=list)
    differences: list[str] | None = None
    remote: bool = False  # taken from (or pushed to) the remote build cache


def fork_tree(deployment: Deployment) -> Tree:
    """The fork as the sandbox sees it (VCS data, caches and skillc's own files left out)."""
    return scan(deployment.target, ignore=FORK_IGNORE)


def plan(spec: Spec, deployment: Deployment, agent: str, model: str | None) -> Plan:
    """Check the inputs, read the fork and compute the build key."""
    problems = lint.errors(lint.check(spec))
    if problems:
        raise SpecError(problems)
    inputs = reference.defaults(spec, deployment.inputs_for(spec.name))
    errors = sorted(Draft202012Validator(spec.inputs_schema).iter_errors(inputs),
                    key=lambda e: list(map(str, e.absolute_path)))
    if errors:
        raise DeploymentError("\n".join(
            f"{deployment.path}: inputs.{spec.name}"
            f"{''.join('.' + str(p) for p in e.absolute_path)}: {e.message}" for e in errors))
    fork = fork_tree(deployment)
    base = make_tree(e for e in fork.entries if spec.may_touch(e.path))
    fields_ = {"v": KEY_VERSION, "spec": spec.digest, "inputs": inputs, "base": base.digest,
               "templates": templates_digest(), "agent": agent,
               "model": model if agent == "anthropic" else None,
               "image": image_digest(deployment.sandbox), "compiler": __version__}
    return Plan(spec, deployment, inputs, fork, base, digest_json(fields_), fields_)


def diff_files(fork: Tree, output: Tree) -> dict[str, list[Any]]:
    """The manifest's files section."""
    a, b = fork.by_path(), output.by_path()
    added = [b[p].to_json() for p in sorted(b.keys() - a.keys())]
    modified = [b[p].to_json() for p in sorted(a.keys() & b.keys()) if a[p] != b[p]]
    return {"added": added, "modified": modified, "deleted": sorted(a.keys() - b.keys())}


class Builder:
    """Runs builds against one registry."""

    def __init__(self, registry: Registry, progress: Progress = lambda _: None,
                 agent_factory: Callable[[Deployment], Agent] = make_agent) -> None:
        self.registry = registry
        self.progress = progress
        self.agent_factory = agent_factory

    def build(self, spec: Spec, deployment: Deployment, *, no_cache: bool = False,
              replay_of: BuildRow | None = None) -> Outcome:
        """Build (or take from the cache) one skill for one deployment."""
        if replay_of is not None:
            agent: Agent = ReplayAgent(read_transcript(self.registry, replay_of))
        else:
            agent = self.agent_factory(deployment)
        self.progress(f"planning {spec.name} for {deployment.name}")
        enforce_trust(self.registry, spec.digest, f"{spec.name}@{spec.version} ({spec.root})")
        p = plan(spec, deployment, agent.name, agent.model)
        cached = None if no_cache or replay_of else self.registry.index.build_by_key(p.key)
        if cached and cached.output_tree and self.registry.store.has(cached.output_tree):
            self.progress("cache hit")
            return Outcome(cached, True, self._json(cached.manifest), self._json(cached.report))
        remote = RemoteCache.of(deployment)
        if remote and not no_cache and not replay_of:
            found = remote.find(self.registry, p.key, self.progress)
            if found is not None:
                return Outcome(found, True, self._json(found.manifest), self._json(found.report),
                               remote=True)
        workdir = Path(tempfile.mkdtemp(prefix="skillc-build-"))
        try:
            outcome = _Run(self, p, agent, workdir).execute()
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
        if remote and remote.push_enabled:
            outcome.remote = remote.store(self.registry, outcome.build, self.progress)
        if replay_of is not None and outcome.build.output_tree and replay_of.output_tree:
            outcome.differences = tree_differences(
                self.registry.store.tree(replay_of.output_tree),
                self.registry.store.tree(outcome.build.output_tree))
        return outcome

    def _json(self, digest: str | None) -> Any:
        return self.registry.store.get_json(digest) if digest else None


@dataclass(frozen=True)
class RemoteCache:
    """A build cache in an OCI registry: builds tagged ``key-<build key hex>``."""

    base: str
    insecure: bool
    push_enabled: bool

    @classmethod
    def of(cls, deployment: Deployment) -> RemoteCache | None:
        """The deployment's ``[cache]``, else the user config's, else None."""
        settings = deployment.cache or load_config().cache
        if not settings.get("remote"):
            return None
        return cls(str(settings["remote"]), bool(settings.get("insecure")),
                   bool(settings.get("push")))

    def ref(self, key: str) -> str:
        """The reference a build key is stored under."""
        return f"{self.base}:key-{key.split(':', 1)[1]}"

    def find(self, reg: Registry, key: str, progress: Progress) -> BuildRow | None:
        """Pull the build for ``key`` if the remote has it (a remote that fails is skipped)."""
        from .sharing import pull

        try:
            pulled = pull(reg, self.ref(key), self.insecure)
        except RegistryError as exc:
            if "not found" not in str(exc):
                progress(f"remote cache skipped: {exc}")
            return None
        progress("remote cache hit")
        return reg.index.build(str(pulled["id"]))

    def store(self, reg: Registry, build: BuildRow, progress: Progress) -> bool:
        """Push a passed build under its key; failures only warn."""
        from .sharing import push_build

        try:
            push_build(reg, self.ref(build.key), build.id, self.insecure)
        except SkillcError as exc:
            progress(f"could not push to the remote cache: {exc}")
            return False
        return True


def tree_differences(a: Tree, b: Tree) -> list[str]:
    """Paths whose content, mode or presence differ."""
    x, y = a.by_path(), b.by_path()
    return sorted(p for p in x.keys() | y.keys() if x.get(p) != y.get(p))


def read_transcript(registry: Registry, build: BuildRow) -> list[dict[str, Any]]:
    """The stored transcript of a build."""
    if not build.transcript:
        raise AgentError(f"build {build.id} has no transcript to replay")
    return parse(registry.store.get(build.transcript).decode("utf-8"), f"build {build.id}")


class _Run:
    """One build that missed the cache."""

    def __init__(self, builder: Builder, p: Plan, agent: Agent, workdir: Path) -> None:
        self.b, self.p, self.agent, self.workdir = builder, p, agent, workdir
        dep, spec = p.deployment, p.spec
        self.redactor = Redactor.from_env([*spec.requires_env, *dep.secrets])
        self.transcript = Transcript(workdir / "transcript.jsonl", self.redactor)
        self.started = time.monotonic()
        self.timings: dict[str, float] = {}
        self.checks = 0
        self.last: tuple[Tree, Path, dict[str, Any], Report] | None = None
        self.sandbox_info: dict[str, Any] = {"backend": dep.sandbox.backend}

    def execute(self) -> Outcome:
        p = self.p
        prompt = build_prompt(p.spec, p.deployment, p.inputs, p.fork,
                              lambda path: (p.deployment.target / path).read_bytes(), self.redactor)
        self.transcript.event("start", agent=self.agent.name, model=self.agent.model,
                              spec=p.spec.name, version=p.spec.version, deployment=p.deployment.name,
                              build_key=p.key)
        task = Task(p.spec, p.deployment, p.inputs, prompt, self.redactor)
        cfg = p.deployment.agent
        budget = Budget(cfg.max_turns, cfg.max_tokens, cfg.wall_time)
        self.b.progress(f"opening a {p.deployment.sandbox.backend} sandbox")
        error: str | None = None
        usage: dict[str, Any] = {}
        result = None
        try:
            with open_sandbox(p.deployment.sandbox, p.deployment.target, p.fork) as box:
                self.sandbox_info = box.provenance()
                self.b.progress(f"{self.agent.name} agent at work")
                try:
                    result = self.agent.run(task, box, budget, self.transcript, self._check(box))
                    usage = result.usage.to_json()
                    self._final(box, result.submission, usage)
                except AgentError as exc:
                    error = str(exc)
        finally:
            self.timings["total"] = round(time.monotonic() - self.started, 3)
        self.transcript.event("end", status="failed" if error else "passed", error=error,
                              usage=usage)
        self.transcript.close()
        row = self._store(prompt.to_json(), usage, error)
        if row.status != "passed":
            raise BuildFailed(f"build {row.id} failed: {row.error}", row.id)
        return Outcome(row, False, self.last[2] if self.last else None,
                       self.last[3].to_json() if self.last else None,
                       result.divergences if result else [])

    def _check(self, box: Sandbox) -> Callable[[dict[str, Any]], list[str]]:
        def check(submission: dict[str, Any]) -> list[str]:
            self.b.progress("validating: schema, policy, acceptance tests")
            report = self._validate(box, submission, {})
            return report.errors()
        return check

    def _validate(self, box: Sandbox, submission: dict[str, Any],
                  usage: dict[str, Any]) -> Report:
        self.checks += 1
        out_dir = self.workdir / f"output-{self.checks}"
        try:
            full = box.export(out_dir)
        except TreeError as exc:
            report = Report([Check("policy", "failed", [f"output: {exc}"])])
            self.last = None
            return report
        shutil.rmtree(out_dir / ".skillc", ignore_errors=True)
        output = make_tree(e for e in full.entries if not e.path.startswith(".skillc/"))
        t = time.monotonic()
        acceptance = check_acceptance(self.p.spec, out_dir, output, self.p.deployment.sandbox)
        self.timings["acceptance"] = round(time.monotonic() - t, 3)
        manifest = self._manifest(output, submission, acceptance, usage)
        report = Report([check_schema(manifest),
                         check_policy(self.p.spec, self.p.fork, output, manifest), acceptance])
        self.transcript.event("validation", attempt=self.checks, report=report.to_json())
        self.last = (output, out_dir, manifest, report)
        return report

    def _final(self, box: Sandbox, submission: dict[str, Any], usage: dict[str, Any]) -> None:
        """Re-validate when the workspace changed after acceptance; refresh the manifest."""
        exported = box.export(self.workdir / "final")
        final = make_tree(e for e in exported.entries if not e.path.startswith(".skillc/"))
        if self.last is None or final.digest != self.last[0].digest:
            report = self._validate(box, submission, usage)
            if not report.passed:
                raise AgentError("the workspace changed after the accepted submission and no "
                                 "longer validates: " + "; ".join(report.errors()))
        assert self.last is not None
        output, out_dir, _, report = self.last
        acceptance = next(c for c in report.checks if c.name == "acceptance")
        self.last = (output, out_dir, self._manifest(output, submission, acceptance, usage), report)

    def _manifest(self, output: Tree, submission: dict[str, Any], acceptance: Check,
                  usage: dict[str, Any]) -> dict[str, Any]:
        p = self.p
        return {
            "schema_version": 1,
            "skill": {"name": p.spec.name, "version": p.spec.version, "digest": p.spec.digest},
            "deployment": {"name": p.deployment.name, "digest": p.deployment.digest},
            "files": diff_files(p.fork, output),
            **{k: submission.get(k) for k in ("summary", "env", "hosts", "dependencies",
                                              "entry_points")},
            **({"notes": submission["notes"]} if "notes" in submission else {}),
            "acceptance": acceptance_summary(acceptance),
            "provenance": {
                "spec_digest": p.spec.digest, "deployment_digest": p.deployment.digest,
                "base_tree": p.base.digest, "output_tree": output.digest,
                "templates_digest": p.key_fields["templates"], "build_key": p.key,
                "agent": {"backend": self.agent.name, "model": p.key_fields["model"]},
                "sandbox": self.sandbox_info, "usage": usage, "timings": dict(self.timings),
                "compiler_version": __version__},
        }

    def _store(self, prompt: dict[str, Any], usage: dict[str, Any], error: str | None) -> BuildRow:
        self.b.progress("storing the build")
        store, p = self.b.registry.store, self.p
        output = manifest = report = None
        if self.last is not None:
            tree, out_dir, manifest_json, report_json = self.last
            output = store.put_tree(out_dir, tree)
            manifest = store.put_json(manifest_json)
            report = store.put_json(report_json.to_json())
            if error is None and not report_json.passed:
                error = "validation failed: " + report_json.summary()
        base = store.put_tree(p.deployment.target, p.base)
        row = BuildRow(
            id=secrets.token_hex(6), key=p.key, spec_name=p.spec.name, spec_version=p.spec.version,
            spec_digest=p.spec.digest, deployment=p.deployment.name,
            deployment_digest=p.deployment.digest, status="failed" if error else "passed",
            agent=self.agent.name, model=p.key_fields["model"],
            sandbox=json.dumps(self.sandbox_info, sort_keys=True), base_tree=base,
            output_tree=output, manifest=manifest,
            transcript=store.put((self.workdir / "transcript.jsonl").read_bytes()),
            report=report, prompt=store.put_json(prompt), usage=usage, timings=self.timings,
            error=error, created_at=time.time())
        self.b.registry.index.add_build(row)
        return row
