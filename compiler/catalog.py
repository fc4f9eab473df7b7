"""Specs in the local registry: publish, resolve NAME[@RANGE], yank, fork with lineage."""

from __future__ import annotations

import re
import shutil
import time
from pathlib import Path
from typing import Any

from registry.index import SpecRow
from registry.local import Registry
from registry.signing import Signature, check_trust

from . import lint
from .config import load as load_config
from .errors import ConflictError, NotFoundError, SpecError, UserError
from .home import home
from .spec import Spec, load
from .versions import parse_range

NAME_RE = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")


def open_local() -> Registry:
    """The registry in ``$SKILLC_HOME``."""
    from registry.local import open_registry

    return open_registry(home().root)


def split_ref(ref: str) -> tuple[str, str | None]:
    """``name@range`` → (name, range or None)."""
    name, _, rng = ref.partition("@")
    if not NAME_RE.match(name):
        raise UserError(f"{ref!r}: expected NAME or NAME@VERSION (a spec name is a-z, 0-9, -)")
    return name, (rng or None)


def resolve(reg: Registry, ref: str) -> SpecRow:
    """The newest non-yanked version matching ``ref`` (an exact version may be yanked)."""
    name, rng = split_ref(ref)
    rows = reg.index.versions(name)
    if not rows:
        raise NotFoundError(f"no spec named {name!r} is published here (try `skillc search`)")
    exact = [r for r in rows if r.version == rng]
    if exact:
        return exact[0]
    live = {r.version: r for r in rows if not r.yanked}
    best = parse_range(rng or "*").best(live)
    if best is None:
        shown = ", ".join(r.version + (" (yanked)" if r.yanked else "") for r in rows)
        raise NotFoundError(f"no version of {name} matches {rng!r}; published: {shown}")
    return live[best]


def load_ref(reg: Registry, target: str) -> Spec:
    """A spec from a folder path, or from the registry by NAME[@RANGE] (verified)."""
    path = Path(target)
    if path.exists() or "/" in target:
        return load(path)
    row = resolve(reg, target)
    cached = _verified.get((str(reg.root), row.digest))
    if cached is not None and cached.root.is_dir():
        return cached
    folder = reg.checkout_spec(row)
    spec = load(folder)
    if spec.digest != row.digest:  # the cached checkout was changed on disk: take it again
        shutil.rmtree(folder.parent, ignore_errors=True)
        spec = load(reg.checkout_spec(row))
    _verified[(str(reg.root), row.digest)] = spec
    return spec


# Checkouts verified in this process (a status over many deployments loads each spec once).
_verified: dict[tuple[str, str], Spec] = {}


def enforce_trust(reg: Registry, digest: str, what: str,
                  signatures: list[Signature] | None = None) -> None:
    """Refuse a spec the trust policy does not accept."""
    cfg = load_config()
    if not cfg.require_signatures:
        return
    sigs = signatures if signatures is not None else \
        [Signature(**s) for s in reg.index.signatures(digest)]
    ok, why = check_trust(digest, sigs, cfg.trusted_keys)
    if not ok:
        raise UserError(f"refusing {what}: {why} (require_signatures is on in "
                        f"{home().config})")


def publish(reg: Registry, folder: Path) -> tuple[SpecRow, bool]:
    """Lint, then store the spec; the same version with other content is refused."""
    spec = load(folder)
    errors = lint.errors(lint.check(spec))
    if errors:
        raise SpecError(errors)
    if not spec.version:
        raise UserError(f"{spec.doc.path}: cannot publish without a version (add `version: 1.0.0`)")
    forked = spec.get("forked_from")
    row = SpecRow(spec.name, spec.version, spec.digest, spec.description, time.time(),
                  forked_from=dict(forked) if isinstance(forked, dict) else None)
    added = reg.add_spec(spec.root, spec.tree, row, spec.doc.body)
    return (row if added else reg.index.spec(spec.name, spec.version)), added


def fork(reg: Registry, ref: str, new_name: str, to: Path | None = None) -> Path:
    """Copy a published spec under a new name, recording where it came from."""
    if not NAME_RE.match(new_name):
        raise UserError(f"{new_name!r}: a spec name is 1-64 characters of a-z, 0-9 and hyphens")
    row = resolve(reg, ref)
    source = load_ref(reg, f"{row.name}@{row.version}")
    dest = (to or Path.cwd()) / new_name
    if dest.exists():
        raise ConflictError(f"{dest} already exists")
    shutil.copytree(source.root, dest)
    skill = dest / "SKILL.md"
    skill.write_text(rewrite_front_matter(source, {"name": new_name, "forked_from": {
        "name": row.name, "version": row.version, "digest": row.digest}}), "utf-8")
    return dest


def rewrite_front_matter(spec: Spec, values: dict[str, Any]) -> str:
    """SKILL.md with top-level keys replaced or added (other lines kept as written)."""
    import yaml

    lines = (spec.root / "SKILL.md").read_text("utf-8").replace("\r\n", "\n").split("\n")
    end = spec.doc.front.body_line - 2  # the closing '---'
    keep: list[str] = []
    skipping = False
    for line in lines[1:end]:
        key = line.split(":", 1)[0] if line and not line[0].isspace() else None
        if key is not None:
            skipping = key in values
        if not skipping:
            keep.append(line)
    added = yaml.safe_dump(values, sort_keys=False, default_flow_style=False).rstrip("\n")
    return "\n".join(["---", *keep, added, *lines[end:]])


def lineage(reg: Registry, row: SpecRow) -> list[dict[str, Any]]:
    """The chain of forks behind a spec, nearest first."""
    chain, seen = [], set()
    parent = row.forked_from
    while parent and (parent.get("name"), parent.get("version")) not in seen:
        seen.add((parent.get("name"), parent.get("version")))
        chain.append(parent)
        try:
            parent = reg.index.spec(str(parent["name"]), str(parent["version"])).forked_from
        except NotFoundError:
            break
    return chain
