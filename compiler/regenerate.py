"""Status and regeneration of a deployment's installed skills, keeping the user's edits.

A skill is stale when its spec has a newer matching version (or another digest),
its inputs changed, the prompt templates, compiler, sandbox image or agent
changed, or the fork files it builds on (those in its paths that it did not
write) changed. Regenerating rebuilds it on the fork as it is now and merges
each file three ways: base = the previous build's output, theirs = the new
build's output, ours = the fork now.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

from . import __version__, catalog
from . import lock as lockfile
from .build import fork_tree
from .errors import ConflictError
from .fork import content, inputs_digest, mode_in
from .install import Installer, Result
from .merge import has_markers, merge3
from .prompts import templates_digest
from .reference import defaults
from .sandbox import image_digest


@dataclass
class SkillStatus:
    """One installed skill: what it is, why it is stale, what the user changed."""

    name: str
    version: str
    build: str
    stale: list[str] = field(default_factory=list)
    customized: dict[str, str] = field(default_factory=dict)
    conflicts: list[str] = field(default_factory=list)
    target: str | None = None  # the version a regenerate would build

    def to_json(self) -> dict[str, Any]:
        """As plain data."""
        return dict(vars(self))


class Regenerator(Installer):
    """Status and regenerate on top of the installer's machinery."""

    def status(self) -> list[SkillStatus]:
        """Every installed skill with its staleness reasons and customized files."""
        self.finalize_resolved()
        image = image_digest(self.deployment.sandbox)
        tree = fork_tree(self.deployment)
        out = []
        for name, rec in sorted(self.lock.skills.items()):
            st = SkillStatus(name, rec.version, rec.build)
            row = catalog.resolve(self.registry, f"{name}@{rec.range}" if rec.range != "*"
                                  else name)
            st.target = row.version
            if row.version != rec.version:
                st.stale.append(f"newer version {row.version} matches {rec.range}")
            elif row.digest != rec.digest:
                st.stale.append("spec digest changed")
            spec = catalog.load_ref(self.registry, f"{row.name}@{row.version}")
            if inputs_digest(defaults(spec, self.deployment.inputs_for(name))) != rec.key["inputs"]:
                st.stale.append("inputs changed")
            checks = (("templates", templates_digest(), "prompt templates changed"),
                      ("compiler", __version__, "compiler version changed"),
                      ("image", image, "sandbox image changed"),
                      ("agent", self.deployment.agent.backend, "agent changed"))
            st.stale += [why for key, now, why in checks if rec.key.get(key) != now]
            if self.fork.context(spec, set(rec.files), tree) != rec.context:
                st.stale.append("fork files it builds on changed")
            for path, frec in sorted(rec.files.items()):
                now = self.fork.digest(path)
                if now != frec.digest:
                    st.customized[path] = "deleted" if now is None else "modified"
            st.conflicts = list(self.lock.pending.get(name, {}).get("paths", []))
            out.append(st)
        return out

    def finalize_resolved(self) -> list[str]:
        """Regenerations whose conflicts the user has resolved become the installed state."""
        done = []
        for name, pending in list(self.lock.pending.items()):
            if any(has_markers(self.fork.read(p) or b"") for p in pending["paths"]):
                continue
            rec = self.lock.skills[name]
            for field_name in ("version", "digest", "build", "build_key", "output_tree", "key"):
                setattr(rec, field_name, pending[field_name])
            for path in pending["files"]:
                rec.files.setdefault(path, lockfile.FileRecord("added", None, None))
                rec.files[path].digest = self.fork.digest(path)
            del self.lock.pending[name]
            done.append(name)
        if done:
            self.save()
        return done

    def unresolved(self) -> list[str]:
        """Files still holding conflict markers from an earlier regenerate."""
        return sorted(p for pending in self.lock.pending.values() for p in pending["paths"]
                      if has_markers(self.fork.read(p) or b""))

    def regenerate(self, plan_only: bool = False) -> tuple[Result, list[SkillStatus]]:
        """Rebuild the stale skills (dependencies first) and merge their output into the fork."""
        if left := self.unresolved():
            raise ConflictError(f"{self.deployment.target}: resolve the conflict markers left by the "
                                f"last regenerate first: {', '.join(left)}")
        statuses = self.status()
        result = Result(self.deployment.name)
        for st in self._in_dependency_order(statuses):
            if not st.stale:
                result.skills[st.name] = "up to date"
                continue
            if plan_only:
                result.skills[st.name] = "would rebuild: " + "; ".join(st.stale)
                continue
            result.skills[st.name] = self._regenerate_one(st, result)
        return result, statuses

    def _in_dependency_order(self, statuses: list[SkillStatus]) -> list[SkillStatus]:
        by_name = {s.name: s for s in statuses}
        ordered: list[SkillStatus] = []

        def visit(name: str) -> None:
            if name in by_name and by_name[name] not in ordered:
                for dep in self.lock.skills[name].requires:
                    visit(dep)
                ordered.append(by_name[name])

        for name in sorted(by_name):
            visit(name)
        return ordered

    def _regenerate_one(self, st: SkillStatus, result: Result) -> str:
        rec = self.lock.skills[st.name]
        before = copy.deepcopy(rec)  # the lock keeps this entry as it was if the merge conflicts
        spec = catalog.load_ref(self.registry, f"{st.name}@{st.target}")
        self.progress(f"{self.deployment.name}: rebuilding {st.name}@{st.target}")
        outcome = self.builder.build(spec, self.deployment)
        store = self.registry.store
        assert outcome.build.output_tree and outcome.manifest is not None
        old, new = store.tree(rec.output_tree), store.tree(outcome.build.output_tree)
        files = outcome.manifest["files"]
        changed = {f["path"] for f in files["added"] + files["modified"]} | set(files["deleted"])
        for path in sorted(changed | set(rec.files)):
            ours = self.fork.read(path)
            merged = merge3(content(self.registry, old, path), ours,
                            content(self.registry, new, path))
            action = "conflict" if merged.conflict else "merged" if merged.note == "merged" else \
                ("deleted" if merged.content is None and ours is not None else "updated")
            self.write(st.name, path, merged.content, mode_in(new, path), result, action,
                       merged.note)
            if path not in rec.files and merged.content is not None:
                rec.files[path] = lockfile.FileRecord("added" if ours is None else "modified",
                                                      None, store.put(ours) if ours else None)
        new_rec = self.new_record(spec, rec.range, outcome)
        conflicts = [c.path for c in result.changes if c.skill == st.name and c.action == "conflict"]
        if conflicts:
            self.lock.skills[st.name] = before
            self.lock.pending[st.name] = {
                "version": new_rec.version, "digest": new_rec.digest, "build": new_rec.build,
                "build_key": new_rec.build_key, "output_tree": new_rec.output_tree,
                "key": new_rec.key, "paths": conflicts, "files": sorted(changed)}
            self.save()
            return f"conflicts in {', '.join(conflicts)}"
        for field_name in ("version", "digest", "build", "build_key", "output_tree", "key"):
            setattr(rec, field_name, getattr(new_rec, field_name))
        for path, frec in rec.files.items():
            frec.digest = self.fork.digest(path)
        rec.context = self.fork.context(spec, set(rec.files))
        self.save()
        return f"regenerated {rec.version}"
