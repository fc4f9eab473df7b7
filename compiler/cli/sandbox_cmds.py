"""``skillc sandbox``: doctor, run, prune, image build."""

from __future__ import annotations

import sys
from pathlib import Path

import click
from rich.table import Table

from compiler.errors import UserError
from compiler.sandbox import BACKENDS, SandboxConfig, open_sandbox
from compiler.sandbox import prune as prune_all
from compiler.sandbox.images import DEFAULT_IMAGE, DEFAULT_MIRROR, DEFAULT_SUITE

from .app import EXIT_ENVIRONMENT, cli, emit_json, err, json_option, out

TIMEOUT_EXIT = 124


@cli.group()
def sandbox() -> None:
    """Check, use and clean up the sandbox backends."""


@sandbox.command()
@click.option("--backend", "backends", multiple=True, type=click.Choice(BACKENDS),
              help="Check only these backends (default: all).")
@click.option("--image", default=DEFAULT_IMAGE, show_default=True, help="Docker image to check.")
@json_option
def doctor(backends: tuple[str, ...], image: str, as_json: bool) -> None:
    """Say which backends work here and, for each that does not, exactly how to fix it.

    Exits 3 when a check fails.
    """
    from compiler.sandbox.doctor import run

    checks = run(backends or BACKENDS, image)
    if as_json:
        emit_json([vars(c) for c in checks])
    else:
        table = Table("backend", "check", "", "detail", "fix", box=None, pad_edge=False)
        marks = {"ok": "[green]ok[/]", "warn": "[yellow]warn[/]", "fail": "[red]FAIL[/]"}
        for c in checks:
            table.add_row(c.backend, c.name, marks[c.level], c.detail, c.fix)
        out.print(table)
    if any(c.level == "fail" for c in checks):
        sys.exit(EXIT_ENVIRONMENT)


@sandbox.command(context_settings={"ignore_unknown_options": True})
@click.option("--backend", type=click.Choice(BACKENDS), default="bwrap", show_default=True)
@click.option("--runtime", default=None, help="Docker runtime, e.g. runsc for gVisor.")
@click.option("--image", default=DEFAULT_IMAGE, show_default=True, help="Docker image.")
@click.option("--workspace", type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="Folder copied in as the workspace (default: an empty one).")
@click.option("--timeout", type=float, default=300, show_default=True, help="Seconds.")
@click.option("--memory", "memory_mb", type=int, default=1024, show_default=True, help="MiB.")
@click.option("--pids", type=int, default=256, show_default=True, help="Process limit.")
@click.option("--keep-output", type=click.Path(file_okay=False, path_type=Path),
              help="Copy the workspace here afterwards (must not exist or be empty).")
@json_option
@click.argument("command", nargs=-1, required=True, type=click.UNPROCESSED)
def run(backend: str, runtime: str | None, image: str, workspace: Path | None, timeout: float,
        memory_mb: int, pids: int, keep_output: Path | None, as_json: bool,
        command: tuple[str, ...]) -> None:
    """Run COMMAND in a fresh sandbox over a copy of --workspace; exit with its exit code.

    A command killed at the timeout exits 124. Put `--` before the command.
    """
    if keep_output is not None and keep_output.exists() and any(keep_output.iterdir()):
        raise UserError(f"{keep_output}: --keep-output folder is not empty")
    config = SandboxConfig(backend=backend, runtime=runtime, image=image, memory_mb=memory_mb,
                           pids=pids, exec_timeout=timeout)
    with open_sandbox(config, workspace) as box:
        result = box.exec(list(command), timeout=timeout)
        if keep_output is not None:
            box.export(keep_output)
    if as_json:
        emit_json(result.to_json())
    else:
        sys.stdout.write(result.stdout)
        sys.stderr.write(result.stderr)
        if result.reason != "exit":
            err.print(f"skillc: command ended by {result.reason} after {result.duration:.1f}s")
    sys.exit(TIMEOUT_EXIT if result.reason == "timeout" else result.exit_code)


@sandbox.command()
@click.option("--all", "everything", is_flag=True,
              help="Also remove sandboxes of skillc processes that are still running.")
@json_option
def prune(everything: bool, as_json: bool) -> None:
    """Remove containers, volumes, workspaces and cgroups left by crashed runs."""
    removed = prune_all(everything)
    if as_json:
        emit_json(removed)
        return
    for backend, names in removed.items():
        for name in names:
            out.print(f"{backend}: removed {name}")
    err.print(f"{sum(len(v) for v in removed.values())} leftover(s) removed")


@sandbox.group()
def image() -> None:
    """Sandbox base images."""


@image.command("build")
@click.option("--backend", type=click.Choice(["docker", "microvm"]), default="docker",
              show_default=True, help="docker: an image; microvm: kernel, initramfs, rootfs.")
@click.option("--name", default=DEFAULT_IMAGE, show_default=True)
@click.option("--suite", default=DEFAULT_SUITE, show_default=True, help="Debian release.")
@click.option("--mirror", default=DEFAULT_MIRROR, show_default=True, help="Debian mirror.")
@click.option("--dockerfile", type=click.Path(dir_okay=False, path_type=Path),
              help="Build from a Dockerfile instead (needs a reachable registry).")
@click.option("--if-missing", is_flag=True, help="Do nothing when the image already exists.")
@json_option
def image_build(backend: str, name: str, suite: str, mirror: str, dockerfile: Path | None,
                if_missing: bool, as_json: bool) -> None:
    """Build a sandbox image offline (debootstrap) and record its digest."""
    from compiler.sandbox import images

    if backend == "microvm":
        from compiler.sandbox import vmimage

        built = vmimage.load() if if_missing else None
        if built is None:
            with err.status("building the microVM images…") as status:
                built = vmimage.build(suite, mirror, progress=lambda m: status.update(m))
        summary = {"kernel_version": built.kernel_version, "kernel": built.kernel,
                   "initrd": built.initrd, "rootfs": built.rootfs, "digest": built.digest}
        if as_json:
            emit_json(summary)
        else:
            for key, value in summary.items():
                out.print(f"{key:<15}{value}", markup=False)
        return

    existing = images.docker_image_present(name) if if_missing else None
    if existing:
        record = images.load_record(name)
        if record is None or record.digest != existing:
            record = images.ImageRecord(name, existing, "existing", "", (), 0.0)
            images.save_record(record)
    else:
        with err.status(f"building {name}…") as status:
            record = images.build_docker_image(name, suite, mirror, dockerfile,
                                               progress=lambda msg: status.update(msg))
    if as_json:
        emit_json(vars(record))
    else:
        out.print(f"{record.name} {record.digest}")
