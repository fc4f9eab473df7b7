"""The microVM backend: QEMU ``-M microvm``, a separate kernel between the agent and the host.

One VM per sandbox stays up for all of a build's commands (a guest agent answers
over virtio-serial, so a command does not pay a boot). The VM has no network
device at all; the root filesystem is a read-only disk; the workspace arrives as
a read-only tar disk and lives in a size-limited tmpfs; results come back as a
tar over the agent channel and are checked like any other archive. QEMU runs
unprivileged (uid 65534 when skillc is root) under ``-sandbox on``, with its
image files passed as open file descriptors. KVM is used when the CPU reports
hardware virtualization and ``/dev/kvm`` actually runs a guest; TCG otherwise.
"""

from __future__ import annotations

import base64
import functools
import io
import json
import os
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

from compiler.errors import EnvironmentError_, PathError, SandboxError
from registry.archive import extract, tar_tree
from registry.tree import Limits, Tree, check_relpath, make_tree

from . import vmimage
from .base import (
    PREFIX,
    SANDBOX_GID,
    SANDBOX_UID,
    ExecResult,
    SandboxConfig,
    new_name,
    owner_alive,
)

QEMU = "qemu-system-x86_64"
BOOT_TIMEOUT = {"kvm": 30.0, "tcg": 180.0}
GUEST_OVERHEAD_MB = 128


def qemu_path() -> str:
    """The QEMU binary or an error saying how to install it."""
    exe = shutil.which(QEMU)
    if not exe:
        raise EnvironmentError_("QEMU is not installed: apt-get install qemu-system-x86")
    return exe


def images() -> vmimage.ImageSet:
    """The built image set or an error saying how to build it."""
    built = vmimage.load()
    if built is None:
        raise EnvironmentError_(f"the microVM images in {vmimage.folder()} are not built (or were "
                                "built by another version of skillc): run `skillc sandbox image "
                                "build --backend microvm` (SKILLC_IMAGES chooses the folder)")
    return built


@functools.cache
def host_tsc_khz() -> int:
    """The host CPU's clock in kHz (the rate of the TSC a TCG guest sees)."""
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("cpu MHz"):
            return int(float(line.split(":")[1]) * 1000)
    return 2_000_000


@functools.cache
def accelerator() -> tuple[str, str]:
    """("kvm" or "tcg", why): KVM only where the CPU has it and /dev/kvm runs a guest."""
    flags = next((line for line in Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("flags")), "")
    if not ({"vmx", "svm"} & set(flags.split())):
        return "tcg", "the CPU reports no hardware virtualization (vmx/svm)"
    if not os.access("/dev/kvm", os.R_OK | os.W_OK):
        return "tcg", "/dev/kvm is missing or not accessible"
    probe = vmimage.folder() / "kvm-probe.json"
    if probe.exists():
        data = json.loads(probe.read_text())
        return str(data["accel"]), str(data["why"])
    try:
        with MicroVMSandbox(SandboxConfig(backend="microvm", memory_mb=128, disk_mb=16),
                            accel="kvm", boot_timeout=20) as vm:
            ok = vm.exec(["true"], timeout=10).ok
        result = ("kvm", "hardware virtualization") if ok else \
            ("tcg", "/dev/kvm booted a guest that could not run a command")
    except SandboxError as exc:
        result = ("tcg", f"/dev/kvm did not run a guest ({str(exc).splitlines()[0]})")
    probe.write_text(json.dumps({"accel": result[0], "why": result[1]}))
    return result


class MicroVMSandbox:
    """A QEMU microVM with the skillc guest agent."""

    backend = "microvm"

    def __init__(self, config: SandboxConfig, source: Path | None = None,
                 tree: Tree | None = None, accel: str | None = None,
                 boot_timeout: float | None = None) -> None:
        self.config = config
        self.images = images()
        self.accel, self.accel_why = (accel, "requested") if accel else accelerator()
        self.name = new_name()
        self.dir = Path(tempfile.gettempdir()) / self.name
        self.proc: subprocess.Popen[bytes] | None = None
        self.sock: socket.socket | None = None
        self.closed = False
        self.boot_seconds = self.qemu_seconds = self.guest_uptime = 0.0
        try:
            self._start(source, tree, boot_timeout or BOOT_TIMEOUT[self.accel])
        except BaseException:
            self.close()
            raise

    # -- lifetime ------------------------------------------------------------

    def _start(self, source: Path | None, tree: Tree | None, boot_timeout: float) -> None:
        root = os.geteuid() == 0
        self.dir.mkdir(mode=0o700)
        workspace = self.dir / "workspace.tar"
        workspace.write_bytes(tar_tree(source, tree) if source and tree else
                              vmimage.tar_bytes({}))
        console = self.dir / "console.log"
        console.touch()
        if root:
            for path in (self.dir, workspace, console):
                os.chown(path, SANDBOX_UID, SANDBOX_GID)
        fds = [os.open(self.images.path(n), os.O_RDONLY)
               for n in ("vmlinuz", "initrd.img", "rootfs.ext4")]
        try:
            started = time.monotonic()
            with open(self.dir / "qemu.err", "wb") as errors:
                self.proc = subprocess.Popen(
                    self._argv(fds[0], fds[1], fds[2], workspace, console), pass_fds=fds, env={},
                    stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=errors,
                    start_new_session=True, user=SANDBOX_UID if root else None,
                    group=SANDBOX_GID if root else None, extra_groups=[] if root else None)
        finally:
            for fd in fds:
                os.close(fd)
        self.sock = self._connect(started + boot_timeout)
        self.qemu_seconds = time.monotonic() - started  # until QEMU listens on the channel
        ready = self._recv(started + boot_timeout)
        self.boot_seconds = time.monotonic() - started
        self.guest_uptime = float(ready.get("uptime", 0.0))  # the guest's clock at agent ready

    def _argv(self, kernel: int, initrd: int, rootfs: int, workspace: Path,
              console: Path) -> list[str]:
        cfg = self.config
        memory = cfg.memory_mb + cfg.disk_mb + GUEST_OVERHEAD_MB
        tcg = self.accel == "tcg"
        # Under TCG there is no kvmclock, and calibrating the TSC against the emulated PIT fails
        # now and then, after which the guest's timers stall. So: the legacy PIT/PIC on, the TSC
        # frequency given (TCG's TSC runs at the host's rate), the delay loop preset.
        machine = "microvm,x-option-roms=off" + (",pit=on,pic=on,rtc=on" if tcg else "")
        clock = f" lpj=4000000 tsc=reliable tsc_early_khz={host_tsc_khz()}" if tcg else ""
        return [
            qemu_path(), "-M", machine, "-accel", self.accel,
            "-cpu", "host" if self.accel == "kvm" else "max",
            "-m", str(memory), "-smp", str(max(1, int(cfg.cpus))),
            "-nodefaults", "-no-user-config", "-nographic", "-no-reboot", "-net", "none",
            "-sandbox", "on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny",
            "-kernel", f"/proc/self/fd/{kernel}", "-initrd", f"/proc/self/fd/{initrd}",
            "-append", f"console=ttyS0 quiet panic=-1 skillc.disk={cfg.disk_mb}{clock}",
            "-serial", f"file:{console}",
            "-drive", f"id=root,file=/proc/self/fd/{rootfs},format=raw,if=none,readonly=on",
            "-device", "virtio-blk-device,drive=root,serial=skillc-root",
            "-drive", f"id=ws,file={workspace},format=raw,if=none,readonly=on",
            "-device", "virtio-blk-device,drive=ws,serial=skillc-ws",
            "-device", "virtio-serial-device",
            "-chardev", f"socket,id=agent,path={self.dir / 'agent.sock'},server=on,wait=off",
            "-device", "virtserialport,chardev=agent,name=skillc",
        ]

    def _connect(self, deadline: float) -> socket.socket:
        path = self.dir / "agent.sock"
        while time.monotonic() < deadline:
            self._check_alive()
            if path.exists():
                sock = socket.socket(socket.AF_UNIX)
                try:
                    sock.connect(str(path))
                    return sock
                except OSError:
                    sock.close()
            time.sleep(0.02)
        raise SandboxError(self._failure("QEMU did not open the agent channel"))

    def _check_alive(self) -> None:
        if self.proc is not None and self.proc.poll() is not None:
            raise SandboxError(self._failure(f"QEMU exited with code {self.proc.returncode}"))

    def _failure(self, what: str) -> str:
        tails = []
        for name in ("qemu.err", "console.log"):
            path = self.dir / name
            if path.exists() and path.stat().st_size:
                tails.append(f"{name}: " + path.read_text(errors="replace")[-1500:].strip())
        return "\n".join([f"microvm: {what}", *tails])

    def close(self) -> None:
        """Stop the VM and remove its files."""
        if self.closed:
            return
        self.closed = True
        if self.sock is not None:
            self.sock.close()
        if self.proc is not None and self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> MicroVMSandbox:
        return self

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    # -- the agent channel -----------------------------------------------------

    def _send(self, msg: dict[str, Any]) -> None:
        if self.closed or self.sock is None:
            raise SandboxError("sandbox is closed")
        data = json.dumps(msg).encode()
        self.sock.sendall(struct.pack(">I", len(data)) + data)

    def _recv(self, deadline: float) -> dict[str, Any]:
        header = self._read(4, deadline)
        data = self._read(struct.unpack(">I", header)[0], deadline)
        reply: dict[str, Any] = json.loads(data)
        return reply

    def _read(self, size: int, deadline: float) -> bytes:
        assert self.sock is not None
        buf = b""
        while len(buf) < size:
            left = deadline - time.monotonic()
            if left <= 0:
                raise SandboxError(self._failure("the guest agent did not answer in time"))
            self.sock.settimeout(min(left, 1.0))
            try:
                chunk = self.sock.recv(size - len(buf))
            except TimeoutError:
                self._check_alive()
                continue
            if not chunk:
                raise SandboxError(self._failure("the guest agent closed its channel"))
            buf += chunk
        return buf

    def _call(self, msg: dict[str, Any], timeout: float = 120.0) -> dict[str, Any]:
        self._send(msg)
        reply = self._recv(time.monotonic() + timeout)
        if not reply.get("ok"):
            error = str(reply.get("error", "failed"))
            kind, _, detail = error.partition(": ")
            if kind in ("ValueError", "FileNotFoundError", "IsADirectoryError", "OSError"):
                raise PathError(detail)
            raise SandboxError(f"guest agent: {error}")
        return reply

    # -- Sandbox protocol ------------------------------------------------------

    def exec(self, argv: Sequence[str], *, timeout: float | None = None,
             env: Mapping[str, str] | None = None, cwd: str = ".") -> ExecResult:
        """Run one command in the guest as uid 65534."""
        if not argv:
            raise SandboxError("empty command")
        timeout = timeout or self.config.exec_timeout
        if cwd != ".":
            check_relpath(cwd)
        reply = self._call({"op": "exec", "argv": list(argv), "env": dict(env or {}), "cwd": cwd,
                            "timeout": timeout, "output_bytes": self.config.output_bytes,
                            "pids": self.config.pids,
                            "file_bytes": self.config.file_size_mb * 2**20}, timeout + 60)
        return ExecResult(int(reply["exit_code"]), reply["stdout"], reply["stderr"],
                          float(reply["duration"]), str(reply["reason"]),
                          int(reply["stdout_cut"]), int(reply["stderr_cut"]))

    def read_file(self, path: str) -> bytes:
        """Read a workspace file (never through a symlink)."""
        return base64.b64decode(self._call({"op": "read", "path": check_relpath(path)})["data"])

    def write_file(self, path: str, data: bytes, mode: int | None = None) -> None:
        """Create or replace a workspace file."""
        self._call({"op": "write", "path": check_relpath(path), "mode": mode,
                    "data": base64.b64encode(data).decode()})

    def delete_file(self, path: str) -> None:
        """Remove a workspace file or symlink."""
        self._call({"op": "delete", "path": check_relpath(path)})

    def list_files(self) -> list[str]:
        """Every file and symlink of the workspace."""
        return list(self._call({"op": "list"})["paths"])

    def export(self, dest: Path) -> Tree:
        """The workspace as a tar over the agent channel, checked member by member."""
        data = base64.b64decode(self._call({"op": "export"}, timeout=600)["data"])
        limits = Limits(max_files=100_000, max_total_bytes=self.config.disk_mb * 2**20,
                        max_file_bytes=self.config.file_size_mb * 2**20)
        return make_tree(extract(io.BytesIO(data), dest, limits=limits).entries)

    def provenance(self) -> dict[str, Any]:
        """What ran the build."""
        return {"backend": self.backend, "runtime": self.accel, "accel_reason": self.accel_why,
                "image": f"microvm {self.images.kernel_version}",
                "image_digest": self.images.digest, "kernel": self.images.kernel,
                "initrd": self.images.initrd, "rootfs": self.images.rootfs,
                "boot_seconds": round(self.boot_seconds, 3), "limits": self.config.to_json()}


def prune(everything: bool = False) -> list[str]:
    """Stop VMs and remove folders left by crashed runs."""
    removed = []
    for folder in Path(tempfile.gettempdir()).glob(f"{PREFIX}-*"):
        if not (folder / "workspace.tar").exists() or (owner_alive(folder.name) and not everything):
            continue
        out = subprocess.run(["pkill", "-KILL", "-f", str(folder)], capture_output=True,
                             check=False)
        del out
        shutil.rmtree(folder, ignore_errors=True)
        removed.append(folder.name)
    return removed
