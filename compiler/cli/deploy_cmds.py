"""Per-deployment commands: install, status, regenerate, uninstall."""

from __future__ import annotations

import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import click
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from compiler import catalog
from compiler.agents import BACKENDS as AGENTS
from compiler.deployment import Deployment, with_overrides
from compiler.deployment import load as load_deployment
from compiler.errors import SkillcError
from compiler.install import Installer, Result
from compiler.regenerate import Regenerator
from compiler.sandbox import BACKENDS as SANDBOXES

from .app import cli, emit_json, err, json_option, out
from .build_cmds import deployment_options

MARK = {"added": "+", "updated": "~", "merged": "M", "deleted": "-", "kept": "k",
        "conflict": "C", "restored": "r", "unchanged": "="}


def _deployment(path: Path, agent: str | None, sandbox: str | None, runtime: str | None,
                model: str | None) -> Deployment:
    return with_overrides(load_deployment(path), agent, sandbox, runtime, model)


def _print_result(result: Result) -> None:
    for skill, what in result.skills.items():
        out.print(f"{result.deployment}: {skill}: {what}", markup=False)
    for c in result.changes:
        if c.action != "unchanged":
            note = f"  ({c.note})" if c.note and c.note != "merged" else ""
            out.print(f"  {MARK[c.action]} {c.path}{note}", markup=False)
    if result.conflicts:
        err.print("conflicts (resolve the markers, then run regenerate again): "
                  + ", ".join(result.conflicts))


@cli.command()
@click.argument("ref", metavar="NAME[@RANGE]")
@deployment_options
@json_option
def install(ref: str, deployment_path: Path, agent: str | None, sandbox: str | None,
            runtime: str | None, model: str | None, as_json: bool) -> None:
    """Build a published skill (and what it requires) and apply it to the deployment's fork."""
    dep = _deployment(deployment_path, agent, sandbox, runtime, model)
    with err.status("installing…") as status:
        result = Installer(dep, catalog.open_local(), lambda m: status.update(m)).install(ref)
    if as_json:
        emit_json(result.to_json())
    else:
        _print_result(result)
    if result.conflicts:
        sys.exit(1)


@cli.command()
@click.option("-d", "--deployment", "deployment_path", required=True,
              type=click.Path(dir_okay=False, path_type=Path))
@json_option
def status(deployment_path: Path, as_json: bool) -> None:
    """Installed skills: which are stale and why, which files you have customized."""
    dep = load_deployment(deployment_path)
    rows = Regenerator(dep, catalog.open_local()).status()
    if as_json:
        emit_json([r.to_json() for r in rows])
        return
    if not rows:
        out.print(f"{dep.name}: no skills installed")
    for r in rows:
        state = "stale: " + "; ".join(r.stale) if r.stale else "up to date"
        out.print(f"{r.name} {r.version} (build {r.build}) — {state}", markup=False)
        for path, how in r.customized.items():
            out.print(f"  customized: {path} ({how})", markup=False)
        for path in r.conflicts:
            out.print(f"  unresolved conflict: {path}", markup=False)


def _regenerate_one(path: Path, overrides: dict[str, Any], plan: bool,
                    progress: Progress) -> tuple[str, Result | None, str | None]:
    task = progress.add_task(str(path), total=None)
    reg = catalog.open_local()
    name = str(path)
    try:
        dep = _deployment(path, **overrides)
        name = dep.name
        progress.update(task, description=name)
        regen = Regenerator(dep, reg, lambda m: progress.update(task, description=m))
        result, _ = regen.regenerate(plan_only=plan)
        return name, result, None
    except SkillcError as exc:
        return name, None, str(exc)
    finally:
        reg.close()
        progress.update(task, completed=1, total=1)


@cli.command()
@click.option("-d", "--deployment", "deployment_paths", required=True, multiple=True,
              type=click.Path(dir_okay=False, path_type=Path), help="Repeat for many deployments.")
@click.option("--plan", is_flag=True, help="Say what would be rebuilt and why; change nothing.")
@click.option("-j", "--jobs", type=int, default=1, show_default=True,
              help="Deployments handled in parallel.")
@click.option("--agent", type=click.Choice(AGENTS))
@click.option("--sandbox", type=click.Choice(SANDBOXES))
@click.option("--runtime")
@click.option("--model")
@json_option
def regenerate(deployment_paths: tuple[Path, ...], plan: bool, jobs: int, agent: str | None,
               sandbox: str | None, runtime: str | None, model: str | None, as_json: bool) -> None:
    """Rebuild stale skills and merge them into each fork, keeping your edits (3-way merge).

    Exits 1 when a deployment failed or a merge left conflict markers.
    """
    overrides = {"agent": agent, "sandbox": sandbox, "runtime": runtime, "model": model}
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(),
                  console=err, transient=True) as progress, \
            ThreadPoolExecutor(max_workers=max(jobs, 1)) as pool:
        results = list(pool.map(lambda p: _regenerate_one(p, overrides, plan, progress),
                                deployment_paths))
    failed = any(error or (result and result.conflicts) for _, result, error in results)
    if as_json:
        emit_json([{"deployment": name, "error": error, **(result.to_json() if result else {})}
                   for name, result, error in results])
    else:
        table = Table("deployment", "skill", "outcome", box=None)
        for name, result, error in results:
            if error:
                table.add_row(name, "", f"[red]{error}[/]")
                continue
            assert result is not None
            for skill, what in (result.skills or {"": "no skills installed"}).items():
                table.add_row(name, skill, what)
        out.print(table)
        for _, result, _ in results:
            if result and not plan:
                for c in result.changes:
                    if c.action != "unchanged":
                        out.print(f"  {result.deployment}: {MARK[c.action]} {c.path}", markup=False)
                if result.conflicts:
                    err.print(f"{result.deployment}: conflicts in {', '.join(result.conflicts)}")
    if failed:
        sys.exit(1)


@cli.command()
@click.argument("name")
@click.option("-d", "--deployment", "deployment_path", required=True,
              type=click.Path(dir_okay=False, path_type=Path))
@click.option("--force", is_flag=True, help="Also remove or restore files you customized.")
@json_option
def uninstall(name: str, deployment_path: Path, force: bool, as_json: bool) -> None:
    """Remove a skill: delete what it added, restore what it changed — unless you edited it."""
    dep = load_deployment(deployment_path)
    result = Installer(dep, catalog.open_local()).uninstall(name, force)
    if as_json:
        emit_json(result.to_json())
    else:
        _print_result(result)
