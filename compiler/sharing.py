"""Specs and builds between the local registry and OCI registries, with signatures and trust.

A spec travels as a tar of its tree (media type ``application/vnd.skillc.spec.v1+tar``),
its record as the config blob, and its signatures as a layer; a build as its
record, its output and base trees and its manifest, transcript, report and
prompt. Pulled content is checked blob by blob, then re-hashed as a tree and
compared with the digests it claims, before the local registry takes it.
"""

from __future__ import annotations

import io
import json
import tempfile
import time
from pathlib import Path
from typing import Any

from registry.archive import extract, tar_tree
from registry.digest import canonical_json, digest_bytes
from registry.index import BuildRow, SpecRow
from registry.local import Registry
from registry.remote import MEDIA, Blob, Ref, Remote, parse_ref
from registry.signing import Signature
from registry.tree import DEFAULT_LIMITS, Limits, Tree, scan

from . import catalog, lint
from .errors import CorruptionError, NotFoundError, SpecError, UserError
from .spec import SPEC_LIMITS, load

BUILD_OBJECTS = ("manifest", "transcript", "report", "prompt")


# -- push --------------------------------------------------------------------

def push_spec(reg: Registry, ref_text: str, spec_ref: str, insecure: bool = False) -> Ref:
    """Push a published spec version (and its signatures)."""
    row = catalog.resolve(reg, spec_ref)
    ref = parse_ref(ref_text, default_tag=row.version)
    folder = reg.checkout_spec(row)
    tree = reg.store.tree(row.digest)
    record = {"name": row.name, "version": row.version, "digest": row.digest,
              "description": row.description, "forked_from": row.forked_from}
    layers = [(tar_tree(folder, tree), MEDIA["spec"], f"{row.name}.tar"),
              (canonical_json(reg.index.signatures(row.digest)), MEDIA["signatures"],
               "signatures.json")]
    Remote(ref.host, insecure).push(ref, (canonical_json(record), MEDIA["spec_config"]), layers,
                                    {"org.skillc.kind": "spec", "org.skillc.name": row.name,
                                     "org.skillc.version": row.version,
                                     "org.skillc.digest": row.digest})
    return ref


def push_build(reg: Registry, ref_text: str, build_id: str, insecure: bool = False,
               remote: Remote | None = None) -> Ref:
    """Push a passed build: record, trees and stored objects."""
    row = reg.index.build(build_id)
    if row.status != "passed" or not row.output_tree or not row.base_tree:
        raise UserError(f"build {row.id} did not pass; only passed builds are shared")
    ref = parse_ref(ref_text, default_tag=f"build-{row.id}")
    layers = []
    with tempfile.TemporaryDirectory(prefix="skillc-push-") as tmp:
        for name in ("output_tree", "base_tree"):
            tree = reg.store.tree(getattr(row, name))
            reg.store.checkout(tree, Path(tmp) / name)
            layers.append((tar_tree(Path(tmp) / name, tree), MEDIA["tree"], f"{name}.tar"))
    for name in BUILD_OBJECTS:
        digest = getattr(row, name)
        if digest:
            media = MEDIA["transcript"] if name == "transcript" else MEDIA["object"]
            layers.append((reg.store.get(digest), media, name))
    (remote or Remote(ref.host, insecure)).push(
        ref, (canonical_json(vars(row)), MEDIA["build_config"]), layers,
        {"org.skillc.kind": "build", "org.skillc.build": row.id, "org.skillc.key": row.key,
         "org.skillc.name": row.spec_name, "org.skillc.digest": row.spec_digest})
    return ref


# -- pull --------------------------------------------------------------------

def pull(reg: Registry, ref_text: str, insecure: bool = False) -> dict[str, Any]:
    """Fetch a spec or a build, verify it, and add it to the local registry."""
    ref = parse_ref(ref_text, default_tag="latest")
    remote = Remote(ref.host, insecure)
    manifest, cfg, layers = remote.fetch(ref)
    kind = manifest["config"].get("mediaType")
    if kind == MEDIA["spec_config"]:
        row, new = _take_spec(reg, ref, json.loads(cfg.data), layers)
        return {"kind": "spec", "name": row.name, "version": row.version, "digest": row.digest,
                "new": new}
    if kind == MEDIA["build_config"]:
        build, new = take_build(reg, ref, json.loads(cfg.data), layers)
        return {"kind": "build", "id": build.id, "key": build.key, "new": new}
    raise UserError(f"{ref}: not a skillc artifact (config media type {kind})")


def _layer(ref: Ref, layers: list[Blob], title: str) -> bytes:
    for blob in layers:
        if blob.title == title:
            return blob.data
    raise CorruptionError(f"{ref}: the artifact has no {title} layer")


def _tree(ref: Ref, data: bytes, dest: Path, claimed: str, limits: Limits) -> Tree:
    extract(io.BytesIO(data), dest, limits=limits)
    tree = scan(dest, ignore=frozenset())
    if tree.digest != claimed:
        raise CorruptionError(f"{ref}: content hashes to {tree.digest}, not the {claimed} it "
                              "claims; refusing it")
    return tree


def _take_spec(reg: Registry, ref: Ref, record: dict[str, Any], layers: list[Blob]
               ) -> tuple[SpecRow, bool]:
    name, version, digest = record["name"], record["version"], record["digest"]
    signatures = [Signature(**s) for s in json.loads(_layer(ref, layers, "signatures.json"))]
    catalog.enforce_trust(reg, digest, f"{name}@{version} from {ref}", signatures)
    with tempfile.TemporaryDirectory(prefix="skillc-pull-") as tmp:
        folder = Path(tmp) / "spec" / name
        tree = _tree(ref, _layer(ref, layers, f"{name}.tar"), folder, digest, SPEC_LIMITS)
        spec = load(folder)
        if (spec.name, spec.version) != (name, version):
            raise CorruptionError(f"{ref}: the spec inside is {spec.name}@{spec.version}, not "
                                  f"{name}@{version}")
        if problems := lint.errors(lint.check(spec)):
            raise SpecError(problems)
        row = SpecRow(name, version, digest, spec.description, time.time(),
                      forked_from=record.get("forked_from"))
        new = reg.add_spec(folder, tree, row, spec.doc.body)
    for sig in signatures:
        if sig.valid_for(digest):
            reg.index.add_signature(digest, sig.key_id, sig.signature, sig.public_key)
    return reg.index.spec(name, version), new


def take_build(reg: Registry, ref: Ref, record: dict[str, Any], layers: list[Blob]
               ) -> tuple[BuildRow, bool]:
    """Check a fetched build against the digests in its record and store it."""
    row = BuildRow(**record)
    try:
        return reg.index.build(row.id), False
    except NotFoundError:
        pass
    with tempfile.TemporaryDirectory(prefix="skillc-pull-") as tmp:
        for name in ("output_tree", "base_tree"):
            folder = Path(tmp) / name
            tree = _tree(ref, _layer(ref, layers, f"{name}.tar"), folder, getattr(row, name),
                         DEFAULT_LIMITS)
            reg.store.put_tree(folder, tree)
    for name in BUILD_OBJECTS:
        digest = getattr(row, name)
        if not digest:
            continue
        data = _layer(ref, layers, name)
        if digest_bytes(data) != digest:
            raise CorruptionError(f"{ref}: {name} does not match its digest {digest}")
        reg.store.put(data)
    reg.index.add_build(row)
    return row, True
