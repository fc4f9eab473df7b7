"""Which sandbox backends this machine provides, for parametrized tests."""

from __future__ import annotations

import functools
import shutil

import pytest

from compiler.sandbox import SandboxConfig
from tests.conftest import require

IMAGE = "skillc-base:bookworm"


@functools.cache
def _docker_runtimes() -> tuple[bool, frozenset[str], bool]:
    try:
        import docker

        client = docker.from_env(timeout=10)
        info = client.info()
        try:
            client.images.get(IMAGE)
            has_image = True
        except docker.errors.ImageNotFound:
            has_image = False
        return True, frozenset(info.get("Runtimes", {})), has_image
    except Exception:
        return False, frozenset(), False


def config_for(kind: str, **limits: object) -> SandboxConfig:
    """A SandboxConfig for ``bwrap``, ``docker``, ``runsc`` or ``microvm`` — or skip (fail in CI)
    if this machine lacks it."""
    if kind == "microvm":
        from compiler.sandbox import vmimage

        require(shutil.which("qemu-system-x86_64") is not None, "QEMU is not installed")
        require(vmimage.load() is not None, "the microVM images are not built")
        return SandboxConfig(backend="microvm", **limits)  # type: ignore[arg-type]
    if kind == "bwrap":
        require(shutil.which("bwrap") is not None, "bubblewrap is not installed")
        return SandboxConfig(backend="bwrap", **limits)  # type: ignore[arg-type]
    up, runtimes, has_image = _docker_runtimes()
    require(up, "the Docker engine is not running")
    require(has_image, f"the sandbox image {IMAGE} is not built")
    runtime = None
    if kind == "runsc":
        require("runsc" in runtimes, "the runsc runtime is not registered with Docker")
        runtime = "runsc"
    return SandboxConfig(backend="docker", image=IMAGE, runtime=runtime, **limits)  # type: ignore[arg-type]


ALL = [pytest.param("bwrap", marks=pytest.mark.bwrap),
       pytest.param("docker", marks=pytest.mark.docker),
       pytest.param("runsc", marks=[pytest.mark.docker, pytest.mark.runsc]),
       pytest.param("microvm", marks=[pytest.mark.microvm, pytest.mark.slow])]
