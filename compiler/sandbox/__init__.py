"""Sandboxes: where generated code and the agent's commands run, isolated from the host.

``open_sandbox`` picks a backend by name; every backend implements the
``Sandbox`` protocol in ``base``.
"""

from __future__ import annotations

from pathlib import Path

from compiler.errors import UserError
from registry.tree import Tree, scan

from .base import ExecResult, Sandbox, SandboxConfig

BACKENDS = ("bwrap", "docker", "microvm")

__all__ = ["BACKENDS", "ExecResult", "Sandbox", "SandboxConfig", "image_digest", "open_sandbox", "prune"]


def open_sandbox(config: SandboxConfig, source: Path | None = None, tree: Tree | None = None
                 ) -> Sandbox:
    """Open a sandbox of ``config.backend`` over a copy of ``source`` (scanned if no tree)."""
    if source is not None and tree is None:
        tree = scan(source)
    if config.backend == "bwrap":
        from .bwrap import BwrapSandbox

        return BwrapSandbox(config, source, tree)
    if config.backend == "docker":
        from .docker import DockerSandbox

        return DockerSandbox(config, source, tree)
    if config.backend == "microvm":
        from .microvm import MicroVMSandbox

        return MicroVMSandbox(config, source, tree)
    raise UserError(f"unknown sandbox backend {config.backend!r} (choose from {', '.join(BACKENDS)})")


def prune(everything: bool = False) -> dict[str, list[str]]:
    """Remove what crashed runs left behind, per backend (backends not available are skipped)."""
    from compiler.errors import EnvironmentError_

    from . import bwrap, docker, microvm

    removed = {"microvm": microvm.prune(everything), "bwrap": bwrap.prune(everything)}
    try:
        removed["docker"] = docker.prune(everything)
    except EnvironmentError_:
        removed["docker"] = []
    return removed


def image_digest(config: SandboxConfig) -> str:
    """The digest of what the sandbox runs on (part of every build key), without opening one."""
    if config.backend == "bwrap":
        from .bwrap import host_image_digest

        return host_image_digest()
    if config.backend == "docker":
        from .docker import connect, image_id

        return image_id(connect(), config.image)
    if config.backend == "microvm":
        from .microvm import images

        return images().digest
    raise UserError(f"unknown sandbox backend {config.backend!r} (choose from {', '.join(BACKENDS)})")
