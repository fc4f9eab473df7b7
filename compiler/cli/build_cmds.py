"""``skillc build``, ``builds`` and ``audit``."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click
from rich.table import Table

from compiler import audit as auditing
from compiler import catalog
from compiler.agents import BACKENDS as AGENTS
from compiler.build import Builder, Outcome
from compiler.deployment import load as load_deployment
from compiler.deployment import with_overrides
from compiler.errors import BuildFailed, ConflictError
from compiler.sandbox import BACKENDS as SANDBOXES

from .app import cli, emit_json, err, json_option, out


def deployment_options(fn: Any) -> Any:
    """-d, --agent, --sandbox, --runtime, --model."""
    for option in reversed([
        click.option("-d", "--deployment", "deployment_path", required=True,
                     type=click.Path(dir_okay=False, path_type=Path), help="Deployment profile (TOML)."),
        click.option("--agent", type=click.Choice(AGENTS), help="Override the profile's agent."),
        click.option("--sandbox", type=click.Choice(SANDBOXES), help="Override the sandbox backend."),
        click.option("--runtime", help="Docker runtime override, e.g. runsc."),
        click.option("--model", help="Model override for the anthropic agent."),
    ]):
        fn = option(fn)
    return fn


@cli.command()
@click.argument("target", metavar="SPEC_DIR|NAME[@VERSION]")
@deployment_options
@click.option("--no-cache", is_flag=True, help="Build even if an identical build is stored.")
@click.option("--replay", "replay_id", metavar="BUILD_ID",
              help="Re-execute this build's transcript in a fresh sandbox (implies --agent replay).")
@click.option("--output", type=click.Path(file_okay=False, path_type=Path),
              help="Also write the resulting tree to this (new or empty) folder.")
@json_option
def build(target: str, deployment_path: Path, agent: str | None, sandbox: str | None,
          runtime: str | None, model: str | None, no_cache: bool, replay_id: str | None,
          output: Path | None, as_json: bool) -> None:
    """Build one skill for one deployment, or take the identical build from the cache."""
    if output is not None and output.exists() and any(output.iterdir()):
        raise ConflictError(f"{output}: --output folder is not empty")
    reg = catalog.open_local()
    spec = catalog.load_ref(reg, target)
    dep = with_overrides(load_deployment(deployment_path), agent, sandbox, runtime, model)
    replay_of = reg.index.build(replay_id) if replay_id else None
    with err.status("building…") as status:
        builder = Builder(reg, progress=lambda msg: status.update(msg))
        try:
            outcome = builder.build(spec, dep, no_cache=no_cache, replay_of=replay_of)
        except BuildFailed as exc:
            if as_json and exc.build_id:
                emit_json({"status": "failed", "build_id": exc.build_id, "error": str(exc)})
            if exc.build_id:
                err.print(f"see: skillc audit {exc.build_id}")
            raise
    if output is not None:
        reg.store.checkout(auditing.output_tree(reg, outcome.build), output)
    if as_json:
        emit_json(outcome_json(outcome))
    else:
        print_outcome(outcome)
    if outcome.differences:
        sys.exit(1)


def outcome_json(outcome: Outcome) -> dict[str, Any]:
    """A build outcome as plain data."""
    b = outcome.build
    return {"status": b.status, "build_id": b.id, "cached": outcome.cached, "key": b.key,
            "skill": b.spec_name, "version": b.spec_version, "deployment": b.deployment,
            "agent": b.agent, "model": b.model, "usage": b.usage, "timings": b.timings,
            "report": outcome.report, "output_tree": b.output_tree,
            "divergences": outcome.divergences, "differences": outcome.differences}


def print_outcome(outcome: Outcome) -> None:
    """Human summary of a build."""
    b = outcome.build
    out.print(f"build {b.id}  {b.spec_name}@{b.spec_version} for {b.deployment}  "
              f"({'cache hit' if outcome.cached else b.agent})")
    if outcome.report:
        checks = ", ".join(f"{c['name']} {c['status']}" for c in outcome.report["checks"])
        out.print(f"validation: {checks}", markup=False)
        for c in outcome.report["checks"]:
            if c["name"] == "acceptance" and c["detail"].get("tests_run") is not None:
                d = c["detail"]
                out.print(f"acceptance: {d['tests_run']} tests, {d['failures']} failed, "
                          f"{d['errors']} errors in {d['duration']:.1f}s")
    usage = b.usage or {}
    out.print(f"tokens: {usage.get('total_tokens', 0)} (input {usage.get('input_tokens', 0)}, "
              f"output {usage.get('output_tokens', 0)}, cache read "
              f"{usage.get('cache_read_input_tokens', 0)}); turns {usage.get('turns', 0)}")
    if outcome.differences is not None:
        if outcome.differences:
            out.print(f"replay differs from the original in: {', '.join(outcome.differences)}")
        else:
            out.print("replay reproduced the original build file for file")
    for d in outcome.divergences:
        out.print(f"  tool output diverged at event {d['seq']} ({d['tool']})")


@cli.command()
@click.option("--deployment", help="Only builds for this deployment name.")
@click.option("--skill", help="Only builds of this skill.")
@click.option("--limit", type=int, default=50, show_default=True)
@json_option
def builds(deployment: str | None, skill: str | None, limit: int, as_json: bool) -> None:
    """List stored builds, newest first."""
    rows = catalog.open_local().index.builds(deployment, skill, limit)
    if as_json:
        emit_json([{**vars(r), "sandbox": json.loads(r.sandbox)} for r in rows])
        return
    table = Table("id", "skill", "deployment", "agent", "status", "tokens", "seconds", box=None)
    for r in rows:
        table.add_row(r.id, f"{r.spec_name}@{r.spec_version}", r.deployment, r.agent,
                      "[green]passed[/]" if r.status == "passed" else "[red]failed[/]",
                      str(r.usage.get("total_tokens", 0)), f"{r.timings.get('total', 0):.1f}")
    out.print(table)


@cli.command()
@click.argument("build_id")
@click.option("--section", type=click.Choice(["summary", "prompt", "transcript", "diff", "report"]),
              multiple=True, help="Show only these sections (default: all).")
@json_option
def audit(build_id: str, section: tuple[str, ...], as_json: bool) -> None:
    """Explain a build: spec, rendered prompt, transcript, diff against the base, report.

    BUILD_ID may be a unique prefix, or `latest`.
    """
    from .audit_view import render

    reg = catalog.open_local()
    data = auditing.gather(reg, reg.index.build(build_id))
    if as_json:
        emit_json(data)
    else:
        render(data, set(section) or {"summary", "prompt", "transcript", "diff", "report"})
