"""``skillc sandbox doctor``: is each backend usable here, and if not, exactly why and how to fix it."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass

from compiler.errors import SkillcError

from . import cgroups
from .base import SandboxConfig
from .images import DEFAULT_IMAGE, load_record


@dataclass(frozen=True)
class Check:
    """One finding: level is ok, warn (usable, weaker) or fail (unusable)."""

    backend: str
    name: str
    level: str
    detail: str
    fix: str = ""


def _smoke(config: SandboxConfig) -> str | None:
    """Open a sandbox and run `true`; None when it worked, else why not."""
    from . import open_sandbox

    try:
        with open_sandbox(config) as sandbox:
            result = sandbox.exec(["true"], timeout=60)
    except SkillcError as exc:
        return str(exc)
    return None if result.ok else (result.stderr.strip() or f"exit {result.exit_code}")


def check_bwrap() -> list[Check]:
    """bubblewrap: installed, able to create namespaces, limits available."""
    exe = shutil.which("bwrap")
    if not exe:
        return [Check("bwrap", "installed", "fail", "bwrap is not on PATH",
                      "apt-get install bubblewrap")]
    version = subprocess.run([exe, "--version"], capture_output=True, text=True,
                             check=False).stdout.strip()
    checks = [Check("bwrap", "installed", "ok", f"{exe} ({version})")]
    problem = _smoke(SandboxConfig(backend="bwrap"))
    checks.append(Check("bwrap", "runs", "fail" if problem else "ok",
                        problem or "namespaces, uid 65534, no network",
                        "allow unprivileged user namespaces "
                        "(sysctl kernel.unprivileged_userns_clone=1) or run skillc as root"
                        if problem else ""))
    layout = cgroups.detect()
    checks.append(Check("bwrap", "limits",
                        "ok" if layout else "warn",
                        f"cgroup v{layout.version}: processes and memory per sandbox"
                        if layout else "no writable cgroups: memory by RLIMIT_AS only, no process "
                        "limit, disk not bounded",
                        "" if layout else "run skillc as root to get cgroup limits"))
    return checks


def check_docker(image: str = DEFAULT_IMAGE) -> list[Check]:
    """Docker: engine reachable, image built, runtimes registered, a container starts."""
    from .docker import connect

    try:
        client = connect(timeout=10)
    except SkillcError as exc:
        installed = shutil.which("dockerd") is not None
        return [Check("docker", "engine", "fail", str(exc),
                      "start it: dockerd &" if installed else "apt-get install docker.io, then "
                      "start dockerd")]
    info = client.info()
    checks = [Check("docker", "engine", "ok", f"Docker {client.version().get('Version')}, "
                    f"cgroup v{info.get('CgroupVersion', '?')}")]
    try:
        image_id = str(client.images.get(image).id)
    except Exception:  # docker.errors.ImageNotFound and friends
        return [*checks, Check("docker", "image", "fail", f"{image} is not built",
                               "skillc sandbox image build")]
    record = load_record(image)
    checks.append(Check("docker", "image", "ok", f"{image} {image_id[:19]}"
                        + (f" ({record.method} {record.suite})" if record else "")))
    problem = _smoke(SandboxConfig(backend="docker", image=image))
    checks.append(Check("docker", "runc", "fail" if problem else "ok",
                        problem or "hardened container starts"))
    runtimes = info.get("Runtimes", {})
    if "runsc" not in runtimes:
        fix = ("apt-get install runsc, then " if not shutil.which("runsc") else "") + \
            'add {"runtimes": {"runsc": {"path": "/usr/bin/runsc", "runtimeArgs": ' \
            '["--network=none"]}}} to /etc/docker/daemon.json and restart dockerd'
        checks.append(Check("docker", "runsc", "fail", "gVisor runtime not registered", fix))
    else:
        problem = _smoke(SandboxConfig(backend="docker", image=image, runtime="runsc"))
        checks.append(Check("docker", "runsc", "fail" if problem else "ok",
                            problem or "gVisor container starts",
                            'the runtime needs "runtimeArgs": ["--network=none"] in '
                            "/etc/docker/daemon.json" if problem else ""))
    return checks


def check_microvm() -> list[Check]:
    """QEMU installed, the image set built, KVM or TCG (and why), a VM boots."""
    from . import vmimage
    from .microvm import QEMU, accelerator

    exe = shutil.which(QEMU)
    if not exe:
        return [Check("microvm", "qemu", "fail", f"{QEMU} is not installed",
                      "apt-get install qemu-system-x86")]
    version = subprocess.run([exe, "--version"], capture_output=True, text=True,
                             check=False).stdout.splitlines()[0]
    checks = [Check("microvm", "qemu", "ok", version)]
    built = vmimage.load()
    if built is None:
        return [*checks, Check("microvm", "images", "fail", "kernel/initramfs/rootfs not built",
                               "skillc sandbox image build --backend microvm")]
    checks.append(Check("microvm", "images", "ok",
                        f"kernel {built.kernel_version}, set {built.digest[:19]}"))
    accel, why = accelerator()
    checks.append(Check("microvm", "accel", "ok" if accel == "kvm" else "warn",
                        f"{accel}: {why}", "" if accel == "kvm" else
                        "TCG works but is ~20x slower; KVM needs a CPU with vmx/svm"))
    problem = _smoke(SandboxConfig(backend="microvm", memory_mb=256, disk_mb=64))
    checks.append(Check("microvm", "boots", "fail" if problem else "ok",
                        problem.splitlines()[0] if problem else "a VM boots and runs a command"))
    return checks


def run(backends: tuple[str, ...], image: str = DEFAULT_IMAGE) -> list[Check]:
    """Every check for the chosen backends."""
    checks: list[Check] = []
    if "bwrap" in backends:
        checks += check_bwrap()
    if "docker" in backends:
        checks += check_docker(image)
    if "microvm" in backends:
        checks += check_microvm()
    return checks
