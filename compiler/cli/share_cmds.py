"""Sharing beyond one machine: push, pull, signing keys, verify."""

from __future__ import annotations

import sys

import click

from compiler import catalog, sharing
from compiler.config import load as load_config
from compiler.home import home
from registry.signing import KeyRing, Signature, check_trust

from .app import cli, emit_json, err, json_option, out

insecure_option = click.option("--insecure", is_flag=True,
                               help="Plain HTTP; only for a registry on loopback.")


@cli.command()
@click.argument("args", nargs=-1, metavar="[NAME@VERSION] REF")
@click.option("--build", "build_id", metavar="BUILD_ID", help="Push a build instead of a spec.")
@insecure_option
@json_option
def push(args: tuple[str, ...], build_id: str | None, insecure: bool, as_json: bool) -> None:
    """Push a spec (NAME@VERSION REF) or a build (--build ID REF) to an OCI registry.

    REF is HOST[:PORT]/REPOSITORY[:TAG]; the tag defaults to the version (or build-ID).
    """
    reg = catalog.open_local()
    if build_id and len(args) == 1:
        pushed = sharing.push_build(reg, args[0], build_id, insecure)
    elif not build_id and len(args) == 2:
        pushed = sharing.push_spec(reg, args[1], args[0], insecure)
    else:
        raise click.UsageError("usage: skillc push NAME@VERSION REF | skillc push --build ID REF")
    if as_json:
        emit_json({"ref": str(pushed)})
    else:
        out.print(f"pushed {pushed}", markup=False)


@cli.command()
@click.argument("ref", metavar="REF")
@insecure_option
@json_option
def pull(ref: str, insecure: bool, as_json: bool) -> None:
    """Fetch a spec or build from an OCI registry into the local registry, checking every digest."""
    result = sharing.pull(catalog.open_local(), ref, insecure)
    if as_json:
        emit_json(result)
        return
    what = f"{result['name']}@{result['version']}" if result["kind"] == "spec" else \
        f"build {result['id']}"
    out.print(f"{'pulled' if result['new'] else 'already present:'} {result['kind']} {what}",
              markup=False)


@cli.group()
def keys() -> None:
    """Ed25519 signing keys (in $SKILLC_HOME/keys)."""


@keys.command("generate")
@click.argument("name")
def keys_generate(name: str) -> None:
    """Create a key pair; prints the public key to put in others' trusted_keys."""
    public = KeyRing(home().keys).generate(name)
    out.print(public, markup=False)
    err.print(f"private key {home().keys / (name + '.key')} (mode 0600)")


@keys.command("list")
@json_option
def keys_list(as_json: bool) -> None:
    """Your signing keys and their public halves."""
    rows = KeyRing(home().keys).names()
    if as_json:
        emit_json([{"name": n, "public_key": p} for n, p in rows])
        return
    for name, public in rows:
        out.print(f"{name:<16} {public}", markup=False)


@cli.command()
@click.argument("ref", metavar="NAME@VERSION")
@json_option
def verify(ref: str, as_json: bool) -> None:
    """Check a published spec's signatures against the trust policy; exit 1 if not trusted."""
    reg = catalog.open_local()
    row = catalog.resolve(reg, ref)
    sigs = [Signature(**s) for s in reg.index.signatures(row.digest)]
    trusted, why = check_trust(row.digest, sigs, load_config().trusted_keys)
    if as_json:
        emit_json({"name": row.name, "version": row.version, "digest": row.digest,
                   "trusted": trusted, "reason": why,
                   "signatures": [{"key_id": s.key_id, "valid": s.valid_for(row.digest)}
                                  for s in sigs]})
    else:
        for s in sigs:
            out.print(f"{s.key_id}  {'valid' if s.valid_for(row.digest) else 'INVALID'}",
                      markup=False)
        out.print(f"{row.name}@{row.version}: {'trusted' if trusted else 'not trusted'} ({why})",
                  markup=False)
    if not trusted:
        sys.exit(1)
