"""Commands that read spec folders: lint, show."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from compiler import lint as linting
from compiler.spec import Spec, load

from .app import cli, emit_json, err, json_option, out


@cli.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@json_option
def lint(paths: tuple[Path, ...], as_json: bool) -> None:
    """Check skill folders; report every problem as path:line: severity: message.

    Exits 1 when any spec has an error (warnings alone exit 0).
    """
    results = [(path, *linting.lint(path)) for path in paths]
    n_err = sum(len(linting.errors(problems)) for _, _, problems in results)
    n_warn = sum(len(problems) for _, _, problems in results) - n_err
    if as_json:
        emit_json({"errors": n_err, "warnings": n_warn, "specs": [
            {"path": str(path), "name": spec.name if spec else None,
             "ok": not linting.errors(problems),
             "problems": [vars(p) for p in problems]} for path, spec, problems in results]})
    else:
        for _, _, problems in results:
            for p in problems:
                out.print(str(p), markup=False)
        err.print(f"{len(paths)} spec(s): {n_err} error(s), {n_warn} warning(s)")
    if n_err:
        raise SystemExit(1)


def spec_summary(spec: Spec) -> dict[str, Any]:
    """The parsed spec as plain data."""
    return {
        "name": spec.name, "version": spec.version, "description": spec.description,
        "digest": spec.digest, "path": str(spec.root), "front_matter": spec.meta,
        "sections": [vars(s) for s in spec.doc.sections],
        "code_blocks": [{"info": b.info, "line": b.line, "lines": b.text.count("\n")}
                        for b in spec.doc.code_blocks],
        "files": [e.to_json() for e in spec.tree.entries],
    }


def print_spec(summary: dict[str, Any]) -> None:
    """Human rendering of ``spec_summary``."""
    from rich.table import Table

    out.print(f"[bold]{summary['name']}[/] {summary['version'] or '(no version)'}")
    out.print(summary["description"], markup=False)
    out.print(f"digest  {summary['digest']}")
    fm = summary["front_matter"]
    for label, value in (("requires", fm.get("requires")), ("inputs", fm.get("inputs")),
                         ("permissions", fm.get("permissions")),
                         ("acceptance", fm.get("acceptance")),
                         ("forked from", fm.get("forked_from"))):
        if value:
            out.print(f"{label:<12}{value}", markup=False)
    if summary.get("lineage"):
        out.print(f"{'lineage':<12}{summary['lineage']}", markup=False)
    if summary["sections"]:
        out.print("sections:")
        for s in summary["sections"]:
            out.print(f"  {s['line']:>4}  {'  ' * (s['level'] - 1)}{s['title']}", markup=False)
    table = Table("file", "size", "digest", box=None, pad_edge=False)
    for f in summary["files"]:
        table.add_row(f["path"], str(f["size"]), f["digest"][:19])
    out.print(table)


@cli.command()
@click.argument("target", metavar="PATH|NAME[@VERSION]")
@json_option
def show(target: str, as_json: bool) -> None:
    """Show a parsed spec: a folder, or a published NAME[@VERSION] with its lineage."""
    from compiler import catalog

    if Path(target).exists() or "/" in target:
        summary = spec_summary(load(Path(target)))
    else:
        reg = catalog.open_local()
        row = catalog.resolve(reg, target)
        summary = spec_summary(catalog.load_ref(reg, f"{row.name}@{row.version}"))
        summary.update(published_at=row.published_at, yanked=row.yanked,
                       lineage=catalog.lineage(reg, row))
    if as_json:
        emit_json(summary)
    else:
        print_spec(summary)
