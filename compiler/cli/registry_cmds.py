"""Specs in the local registry: publish, yank, search, versions, fork; registry verify and gc."""

from __future__ import annotations

import sys
from pathlib import Path

import click
from rich.table import Table

from compiler import catalog

from .app import cli, emit_json, err, json_option, out


@cli.command()
@click.argument("folder", type=click.Path(path_type=Path))
@click.option("--sign", "key", metavar="KEY", help="Sign the spec's digest with this key.")
@json_option
def publish(folder: Path, key: str | None, as_json: bool) -> None:
    """Publish a spec folder to the local registry (lint must pass; versions are immutable)."""
    from compiler.home import home
    from registry.signing import KeyRing

    reg = catalog.open_local()
    keyring = KeyRing(home().keys)
    if key:
        keyring.private(key)  # a missing key fails before anything is published
    row, added = catalog.publish(reg, folder)
    signature = None
    if key:
        signature = keyring.sign(key, row.digest)
        reg.index.add_signature(row.digest, signature.key_id, signature.signature,
                                signature.public_key)
    if as_json:
        emit_json({**vars(row), "new": added,
                   "signed_by": signature.key_id if signature else None})
    else:
        out.print(f"{'published' if added else 'already published'} {row.name}@{row.version} "
                  f"{row.digest}" + (f" signed by {signature.key_id}" if signature else ""))


@cli.command()
@click.argument("ref", metavar="NAME@VERSION")
@click.option("--undo", is_flag=True, help="Make the version resolvable again.")
def yank(ref: str, undo: bool) -> None:
    """Hide a version from resolution without deleting it."""
    name, version = catalog.split_ref(ref)
    if not version:
        raise click.UsageError("give the exact version: NAME@VERSION")
    catalog.open_local().index.yank(name, version, not undo)
    out.print(f"{'restored' if undo else 'yanked'} {name}@{version}")


@cli.command()
@click.argument("query")
@json_option
def search(query: str, as_json: bool) -> None:
    """Full-text search over published specs (name, description, instructions)."""
    rows = catalog.open_local().index.search(query)
    if as_json:
        emit_json([vars(r) for r in rows])
        return
    table = Table("name", "version", "description", box=None)
    for r in rows:
        table.add_row(r.name, r.version, r.description)
    out.print(table)
    if not rows:
        err.print(f"no spec matches {query!r}")


@cli.command()
@click.argument("name")
@json_option
def versions(name: str, as_json: bool) -> None:
    """Every published version of a spec, yanked ones marked."""
    reg = catalog.open_local()
    rows = reg.index.versions(catalog.split_ref(name)[0])
    if as_json:
        emit_json([vars(r) for r in rows])
        return
    if not rows:
        raise click.ClickException(f"no spec named {name!r} is published here")
    for r in rows:
        out.print(f"{r.version:<12} {r.digest}{'  (yanked)' if r.yanked else ''}", markup=False)


@cli.command()
@click.argument("ref", metavar="NAME[@VERSION]")
@click.argument("new_name")
@click.option("--to", type=click.Path(file_okay=False, path_type=Path),
              help="Parent folder for the new spec (default: the current folder).")
def fork(ref: str, new_name: str, to: Path | None) -> None:
    """Copy a published spec under a new name, recording its lineage (forked_from)."""
    dest = catalog.fork(catalog.open_local(), ref, new_name, to)
    out.print(f"forked {ref} to {dest}")


@cli.group()
def registry() -> None:
    """The local registry itself."""


@registry.command()
@json_option
def verify(as_json: bool) -> None:
    """Re-hash every object and check every reference; exit 1 on any problem."""
    problems = catalog.open_local().verify()
    if as_json:
        emit_json({"ok": not problems, "problems": [str(p) for p in problems]})
    else:
        for p in problems:
            out.print(str(p), markup=False)
        err.print("registry is consistent" if not problems else f"{len(problems)} problem(s)")
    if problems:
        sys.exit(1)


@registry.command()
@click.option("--grace", type=float, default=3600, show_default=True,
              help="Keep unreferenced objects younger than this many seconds (in-flight work).")
@json_option
def gc(grace: float, as_json: bool) -> None:
    """Delete objects nothing refers to."""
    count, size = catalog.open_local().gc(grace)
    if as_json:
        emit_json({"removed": count, "bytes": size})
    else:
        out.print(f"removed {count} object(s), {size} bytes")
