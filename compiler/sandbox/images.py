"""Base images built without a registry: debootstrap a minimal Debian, then import it.

The image's id (the digest of its config) is recorded under
``$SKILLC_HOME/images/`` and goes into every build's provenance.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from compiler.errors import EnvironmentError_, SandboxError, UserError
from compiler.home import home

DEFAULT_IMAGE = "skillc-base:bookworm"
DEFAULT_SUITE = "bookworm"
DEFAULT_MIRROR = "http://deb.debian.org/debian"
PACKAGES = ("python3",)
IMPORT_CHANGES = ["USER 65534:65534", "WORKDIR /workspace",
                  "ENV PATH=/usr/local/bin:/usr/bin:/bin", "LABEL skillc.image=1"]

Progress = Callable[[str], None]


@dataclass(frozen=True)
class ImageRecord:
    """How and when an image was built, and its digest."""

    name: str
    digest: str
    method: str
    suite: str
    packages: tuple[str, ...]
    built_at: float


def _record_path(name: str) -> Path:
    return home().images / (name.replace("/", "_").replace(":", "__") + ".json")


def load_record(name: str) -> ImageRecord | None:
    """The record of an image built by skillc, if any."""
    path = _record_path(name)
    if not path.exists():
        return None
    data = json.loads(path.read_text())
    data["packages"] = tuple(data["packages"])
    return ImageRecord(**data)


def save_record(record: ImageRecord) -> None:
    """Write the record atomically."""
    path = _record_path(record.name)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(asdict(record), indent=2))
    os.replace(tmp, path)


def debootstrap(dest: Path, suite: str = DEFAULT_SUITE, mirror: str = DEFAULT_MIRROR,
                packages: tuple[str, ...] = PACKAGES, progress: Progress = lambda _: None) -> None:
    """A minimal Debian tree at ``dest`` (needs root and debootstrap)."""
    if os.geteuid() != 0:
        raise EnvironmentError_("building the base image needs root (debootstrap)")
    if not shutil.which("debootstrap"):
        raise EnvironmentError_("debootstrap is not installed: apt-get install debootstrap")
    progress(f"debootstrap {suite} (minbase + {', '.join(packages)}) from {mirror}")
    proc = subprocess.run(["debootstrap", "--variant=minbase", f"--include={','.join(packages)}",
                           suite, str(dest), mirror], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-8:])
        raise SandboxError(f"debootstrap failed (exit {proc.returncode}):\n{tail}")
    for junk in ("var/cache/apt/archives", "var/lib/apt/lists"):
        for item in (dest / junk).glob("*"):
            if item.is_file():
                item.unlink()
    (dest / "workspace").mkdir(exist_ok=True)


def base_tree(dest: Path, suite: str = DEFAULT_SUITE, mirror: str = DEFAULT_MIRROR,
              progress: Progress = lambda _: None) -> Path:
    """The minimal Debian tree at ``dest``; returns the cached tarball of it (one debootstrap
    serves the docker image and the microVM root filesystem)."""
    cache = home().images / f"rootfs-{suite}.tar"
    if not cache.exists():
        debootstrap(dest, suite, mirror, PACKAGES, progress)
        progress("packing the tree")
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache.with_suffix(".tmp")
        subprocess.run(["tar", "-C", str(dest), "--numeric-owner", "-cf", str(tmp), "."],
                       check=True)
        os.replace(tmp, cache)
    else:
        progress(f"unpacking the cached Debian tree {cache.name}")
        dest.mkdir(parents=True, exist_ok=True)
        subprocess.run(["tar", "-C", str(dest), "--numeric-owner", "-xf", str(cache)],
                       check=True)
    return cache


def build_docker_image(name: str = DEFAULT_IMAGE, suite: str = DEFAULT_SUITE,
                       mirror: str = DEFAULT_MIRROR, dockerfile: Path | None = None,
                       progress: Progress = lambda _: None) -> ImageRecord:
    """Build the sandbox image (debootstrap + import, or a Dockerfile) and record it."""
    import docker.errors

    from .docker import connect

    client = connect(timeout=600)
    if dockerfile is not None:
        if not dockerfile.is_file():
            raise UserError(f"{dockerfile}: no such Dockerfile")
        progress(f"docker build -f {dockerfile}")
        try:
            image, _ = client.images.build(path=str(dockerfile.parent), dockerfile=dockerfile.name,
                                           tag=name, rm=True, pull=False)
        except docker.errors.DockerException as exc:
            raise SandboxError(f"docker build failed (is a registry reachable?): {exc}") from exc
        record = ImageRecord(name, str(image.id), "dockerfile", "", (), time.time())
    else:
        with tempfile.TemporaryDirectory(prefix="skillc-image-") as tmp:
            tarball = base_tree(Path(tmp) / "rootfs", suite, mirror, progress)
            progress(f"docker import as {name}")
            repo, _, tag = name.partition(":")
            client.api.import_image(src=str(tarball), repository=repo, tag=tag or "latest",
                                    changes=IMPORT_CHANGES)
        record = ImageRecord(name, str(client.images.get(name).id), "debootstrap", suite,
                             PACKAGES, time.time())
    save_record(record)
    return record


def docker_image_present(name: str) -> str | None:
    """The id of a local docker image, or None."""
    import docker.errors

    from .docker import connect

    try:
        return str(connect().images.get(name).id)
    except docker.errors.ImageNotFound:
        return None
