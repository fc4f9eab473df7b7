"""Install and uninstall skills in a deployment's fork, recording them in skillc.lock."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from registry.digest import digest_bytes
from registry.index import SpecRow
from registry.local import Registry
from registry.tree import Tree

from . import blocks, catalog
from . import lock as lockfile
from .build import Builder, Outcome
from .deployment import Deployment
from .errors import ConflictError, NotFoundError, UserError
from .fork import Fork, content, inputs_digest, mode_in
from .merge import merge3
from .reference import defaults
from .spec import Spec
from .versions import parse_range

Progress = Callable[[str], None]


@dataclass
class Change:
    """What happened to one file."""

    skill: str
    path: str
    action: str  # added | updated | merged | deleted | kept | conflict | restored | unchanged
    note: str = ""


@dataclass
class Result:
    """The outcome of one operation on one deployment."""

    deployment: str
    skills: dict[str, str] = field(default_factory=dict)
    changes: list[Change] = field(default_factory=list)

    @property
    def conflicts(self) -> list[str]:
        """Paths left with conflict markers."""
        return [c.path for c in self.changes if c.action == "conflict"]

    def to_json(self) -> dict[str, Any]:
        """As plain data."""
        return {"deployment": self.deployment, "skills": self.skills,
                "changes": [vars(c) for c in self.changes], "conflicts": self.conflicts}


def resolve_order(reg: Registry, ref: str) -> list[tuple[SpecRow, str]]:
    """The spec and its ``requires.skills``, dependencies first; cycles and gaps are errors."""
    chosen: dict[str, tuple[SpecRow, str]] = {}
    order: list[tuple[SpecRow, str]] = []

    def visit(name: str, rng: str, stack: list[str]) -> None:
        if name in stack:
            raise UserError(f"requires.skills has a cycle: {' → '.join([*stack, name])}")
        if name in chosen:
            row = chosen[name][0]
            if not parse_range(rng).contains(row.version):
                raise UserError(f"{name}: {stack[-1]} needs {rng!r} but {row.version} is chosen")
            return
        try:
            row = catalog.resolve(reg, f"{name}@{rng}" if rng not in ("", "*") else name)
        except NotFoundError as exc:
            needed = f" (required by {stack[-1]})" if stack else ""
            raise NotFoundError(f"{exc}{needed}") from None
        spec = catalog.load_ref(reg, f"{row.name}@{row.version}")
        for dep, dep_range in sorted(spec.requires_skills.items()):
            visit(dep, dep_range, [*stack, name])
        chosen[name] = (row, rng)
        order.append((row, rng))

    name, rng = catalog.split_ref(ref)
    visit(name, rng or "*", [])
    return order


class Installer:
    """Operations on one deployment's fork."""

    def __init__(self, deployment: Deployment, registry: Registry,
                 progress: Progress = lambda _: None, builder: Builder | None = None) -> None:
        self.deployment = deployment
        self.registry = registry
        self.progress = progress
        self.builder = builder or Builder(registry, progress)
        self.fork = Fork(deployment)
        self.lock = lockfile.load(deployment.target, deployment.name)
        if self.lock.deployment != deployment.name:
            raise UserError(f"{lockfile.path_for(deployment.target)} belongs to deployment "
                            f"{self.lock.deployment!r}, not {deployment.name!r}")

    def save(self) -> None:
        """Write the lock file and pin what it refers to (so gc keeps it)."""
        lockfile.save(self.deployment.target, self.lock)
        pins: set[str] = set()
        for skill in self.lock.skills.values():
            pins.add(skill.output_tree)
            for rec in skill.files.values():
                pins.update(d for d in (rec.digest, rec.original) if d)
        for pending in self.lock.pending.values():
            pins.add(str(pending["output_tree"]))
        self.registry.index.set_pins(str(self.deployment.target), pins)

    # -- install -----------------------------------------------------------

    def install(self, ref: str) -> Result:
        """Build and apply a skill and what it requires, in dependency order."""
        result = Result(self.deployment.name)
        for row, rng in resolve_order(self.registry, ref):
            if row.name in self.lock.skills:
                result.skills[row.name] = "already installed"
                continue
            spec = catalog.load_ref(self.registry, f"{row.name}@{row.version}")
            self.progress(f"{self.deployment.name}: building {row.name}@{row.version}")
            outcome = self.builder.build(spec, self.deployment)
            self.apply_new(spec, rng, outcome, result)
            result.skills[row.name] = f"installed {row.version}"
            self.save()
        return result

    def apply_new(self, spec: Spec, rng: str, outcome: Outcome, result: Result) -> None:
        """Apply a first build of a skill (merging with edits made since it started)."""
        build, store = outcome.build, self.registry.store
        assert build.output_tree and build.base_tree and outcome.manifest is not None
        out, base = store.tree(build.output_tree), store.tree(build.base_tree)
        files = outcome.manifest["files"]
        record = self.new_record(spec, rng, outcome)
        for path in sorted([f["path"] for f in files["added"] + files["modified"]]
                           + files["deleted"]):
            before = self.fork.read(path)
            if before is not None:
                self.registry.store.put(before)  # to restore it on uninstall
            merged = merge3(content(self.registry, base, path), before,
                            content(self.registry, out, path))
            status = "added" if before is None else "deleted" if merged.content is None \
                else "modified"
            action = "conflict" if merged.conflict else {"modified": "updated"}.get(status, status)
            self.write(spec.name, path, merged.content, mode_in(out, path), result, action,
                       merged.note)
            record.files[path] = lockfile.FileRecord(
                status, self.fork.digest(path), digest_bytes(before) if before is not None else None)
        record.context = self.fork.context(spec, set(record.files))
        self.lock.skills[spec.name] = record

    def new_record(self, spec: Spec, rng: str, outcome: Outcome) -> lockfile.SkillRecord:
        """A lock entry for a build (files filled in by the caller)."""
        b = outcome.build
        manifest = outcome.manifest or {}
        prov = manifest.get("provenance", {})
        key = {"inputs": inputs_digest(defaults(spec, self.deployment.inputs_for(spec.name))),
               "templates": prov.get("templates_digest"), "compiler": prov.get("compiler_version"),
               "image": prov.get("sandbox", {}).get("image_digest"), "agent": b.agent,
               "model": b.model}
        assert b.output_tree is not None and spec.version is not None
        return lockfile.SkillRecord(spec.name, spec.version, spec.digest, rng, b.id, b.key,
                                    b.output_tree, key, "", sorted(spec.requires_skills))

    def write(self, skill: str, path: str, data: bytes | None, mode: int | None, result: Result,
              action: str, note: str = "") -> None:
        """Change one fork file and tell every lock entry that tracks it."""
        if data is not None:
            self.registry.store.put(data)  # the applied content: uninstall merges against it
        if self.fork.read(path) == data:
            result.changes.append(Change(skill, path, "unchanged" if action != "conflict"
                                         else action, note))
            return
        self.fork.write(path, data, mode)
        self.lock.record_write(path, self.fork.digest(path))
        result.changes.append(Change(skill, path, action, note))

    # -- uninstall ---------------------------------------------------------

    def uninstall(self, name: str, force: bool = False) -> Result:
        """Remove what a skill added and restore what it changed, unless the user changed it."""
        record = self.lock.skills.get(name)
        if record is None:
            raise NotFoundError(f"{name} is not installed in {self.deployment.name}")
        if dependents := self.lock.dependents(name):
            raise ConflictError(f"cannot uninstall {name}: {', '.join(dependents)} require(s) it")
        result = Result(self.deployment.name)
        for path, rec in sorted(record.files.items()):
            self._unapply(name, path, rec, force, result)
        del self.lock.skills[name]
        self.lock.pending.pop(name, None)
        self.save()
        kept = [c.path for c in result.changes if c.action == "kept"]
        result.skills[name] = "uninstalled" + (f"; kept customized {', '.join(kept)}"
                                               if kept else "")
        return result

    def _unapply(self, name: str, path: str, rec: lockfile.FileRecord, force: bool,
                 result: Result) -> None:
        now = self.fork.read(path)
        original = self.registry.store.get(rec.original) if rec.original else None
        untouched = (digest_bytes(now) if now is not None else None) == rec.digest
        shared = any(path in s.files for n, s in self.lock.skills.items() if n != name)
        if force or (untouched and not shared):
            self.write(name, path, original, None, result,
                       "deleted" if original is None else "restored")
            return
        if now is None or (rec.status == "added" and not shared):
            result.changes.append(Change(name, path, "kept", "customized since install"))
            return
        without = blocks.remove_block(now.decode("utf-8", "replace"), name)
        if without is not None:
            self.write(name, path, without.encode("utf-8"), None, result, "restored",
                       "removed its managed block")
            self._rebase_originals(name, path, now, without.encode("utf-8"))
            return
        applied = content(self.registry, self._output(name), path)
        merged = merge3(applied, now, original)
        if not merged.conflict:
            self.write(name, path, merged.content, None, result, "restored", "merged")
            self._rebase_originals(name, path, now, merged.content)
            return
        result.changes.append(Change(name, path, "kept", "changed since install; not separable"))

    def _rebase_originals(self, name: str, path: str, before: bytes, after: bytes | None) -> None:
        """Other skills sharing ``path`` remember it as it was before them, which may hold
        the uninstalled skill's part: take that part out of their originals too."""
        for other in self.lock.skills.values():
            rec = other.files.get(path)
            if other.name == name or rec is None or rec.original is None:
                continue
            old = self.registry.store.get(rec.original)
            new = blocks.remove_block(old.decode("utf-8", "replace"), name)
            if new is not None:
                rec.original = self.registry.store.put(new.encode("utf-8"))
                continue
            merged = merge3(before, old, after)
            if not merged.conflict and merged.content is not None:
                rec.original = self.registry.store.put(merged.content)

    def _output(self, name: str) -> Tree:
        return self.registry.store.tree(self.lock.skills[name].output_tree)
