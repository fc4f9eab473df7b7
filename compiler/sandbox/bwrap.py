"""The bubblewrap backend: namespaces, no network, uid 65534, no capabilities.

Each ``exec`` is a fresh ``bwrap`` over the same workspace folder: new user,
pid, ipc, uts, cgroup, mount and network namespaces; a read-only view of the
host's /usr; a private /tmp; the workspace as the only writable bind; a clean
environment. When the command ends, its pid namespace ends with it, so nothing
it started survives. Limits: a per-sandbox cgroup (processes, memory; OOM kills
are counted) when skillc runs as root, rlimits otherwise (CPU time, file size,
open files, and address space when there is no cgroup). As root, bwrap itself
runs as uid 65534 and the workspace is a size-limited tmpfs.
"""

from __future__ import annotations

import ctypes
import functools
import json
import os
import selectors
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

from compiler.errors import EnvironmentError_, SandboxError
from registry.confined import ConfinedDir
from registry.digest import digest_bytes
from registry.tree import Limits, Tree, check_relpath

from . import cgroups
from .base import (
    PREFIX,
    SANDBOX_GID,
    SANDBOX_UID,
    WORKDIR,
    Deadline,
    ExecResult,
    OutputCap,
    SandboxConfig,
    new_name,
    owner_alive,
    sandbox_env,
)

ETC_FILES = ("/etc/alternatives", "/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/ld.so.conf.d",
             "/etc/localtime", "/etc/os-release", "/etc/debian_version")


def bwrap_path() -> str | None:
    """The bwrap executable, if installed."""
    return shutil.which("bwrap")


@functools.cache
def _supports(flag: str) -> bool:
    exe = bwrap_path()
    if not exe:
        return False
    out = subprocess.run([exe, "--help"], capture_output=True, text=True, check=False)
    return flag in out.stdout


@functools.cache
def host_image_digest() -> str:
    """Identity of the host system bwrap exposes: its package database (or os-release)."""
    for path in ("/var/lib/dpkg/status", "/etc/os-release"):
        if os.path.exists(path):
            return digest_bytes(Path(path).read_bytes())
    return "unknown"


class BwrapSandbox:
    """A sandbox whose workspace is a host folder bound into bubblewrap."""

    backend = "bwrap"

    def __init__(self, config: SandboxConfig, source: Path | None = None,
                 tree: Tree | None = None) -> None:
        exe = bwrap_path()
        if exe is None:
            raise EnvironmentError_("bubblewrap is not installed: apt-get install bubblewrap")
        self.config = config
        self.exe = exe
        self.prlimit = shutil.which("prlimit") or "/usr/bin/prlimit"
        self.root = os.geteuid() == 0
        self.name = new_name()
        self.base = Path(tempfile.gettempdir()) / self.name
        self.cgroup: cgroups.Cgroup | None = None
        self.mounted = False
        self.closed = False
        try:
            self._setup()
            if source is not None and tree is not None:
                self.files.copy_in(source, tree)
        except BaseException:
            self.close()
            raise

    def _setup(self) -> None:
        # The base is traversable (bwrap runs as the sandbox uid and must reach ws/ and
        # etc/) but not listable; ws/ itself is 0700 and owned by the sandbox uid.
        self.base.mkdir(mode=0o700)
        os.chmod(self.base, 0o711)
        ws = self.base / "ws"
        ws.mkdir(mode=0o700)
        uid = gid = None
        if self.root:
            uid, gid = SANDBOX_UID, SANDBOX_GID
            _mount_tmpfs(self.name, ws, f"size={self.config.disk_mb}m,mode=0700,uid={uid},"
                         f"gid={gid}")
            self.mounted = True
            layout = cgroups.detect()
            if layout is not None:
                self.cgroup = cgroups.Cgroup.create(layout, self.name, self.config.pids,
                                                    self.config.memory_mb)
        limits = Limits(max_files=100_000, max_total_bytes=self.config.disk_mb * 1024 * 1024,
                        max_file_bytes=self.config.file_size_mb * 1024 * 1024)
        self.files = ConfinedDir(ws, uid, gid, limits)
        etc = self.base / "etc"
        etc.mkdir(mode=0o755)
        (etc / "passwd").write_text(f"sandbox:x:{SANDBOX_UID}:{SANDBOX_GID}::/tmp:/bin/sh\n")
        (etc / "group").write_text(f"sandbox:x:{SANDBOX_GID}:\n")
        (etc / "hosts").write_text("127.0.0.1 localhost sandbox\n::1 localhost\n")

    # -- running commands -------------------------------------------------

    def _argv(self, argv: Sequence[str], env: Mapping[str, str], cwd: str, timeout: float,
              info_fd: int, block_fd: int) -> list[str]:
        cfg = self.config
        limits = [f"--cpu={int(timeout * max(cfg.cpus, 1)) + 5}", "--core=0", "--nofile=1024",
                  f"--fsize={cfg.file_size_mb * 1024 * 1024}"]
        if self.cgroup is None:
            limits.append(f"--as={cfg.memory_mb * 1024 * 1024}")
        args = [self.prlimit, *limits, "--", self.exe, "--unshare-all", "--unshare-user",
                "--uid", str(SANDBOX_UID), "--gid", str(SANDBOX_GID), "--cap-drop", "ALL",
                "--die-with-parent", "--new-session", "--hostname", "sandbox"]
        if _supports("--disable-userns"):
            args.append("--disable-userns")
        args += ["--ro-bind", "/usr", "/usr"]
        for top in ("bin", "lib", "lib32", "lib64", "sbin"):
            host = Path("/") / top
            if host.is_symlink():
                args += ["--symlink", os.readlink(host), f"/{top}"]
            elif host.is_dir():
                args += ["--ro-bind", str(host), f"/{top}"]
        for path in ETC_FILES:
            args += ["--ro-bind-try", path, path]
        for name in ("passwd", "group", "hosts"):
            args += ["--ro-bind", str(self.base / "etc" / name), f"/etc/{name}"]
        args += ["--proc", "/proc", "--dev", "/dev", "--size", str(256 * 1024 * 1024),
                 "--tmpfs", "/tmp", "--bind", str(self.files.root), WORKDIR,
                 "--remount-ro", "/", "--clearenv"]
        for key, value in env.items():
            args += ["--setenv", key, value]
        args += ["--chdir", WORKDIR if cwd == "." else f"{WORKDIR}/{check_relpath(cwd)}",
                 "--info-fd", str(info_fd), "--block-fd", str(block_fd), "--", *argv]
        return args

    def exec(self, argv: Sequence[str], *, timeout: float | None = None,
             env: Mapping[str, str] | None = None, cwd: str = ".") -> ExecResult:
        """Run one command in a fresh bwrap over the workspace."""
        if self.closed:
            raise SandboxError("sandbox is closed")
        if not argv:
            raise SandboxError("empty command")
        timeout = timeout or self.config.exec_timeout
        info_r, info_w = os.pipe()
        block_r, block_w = os.pipe()
        deadline = Deadline(timeout)
        oom_before = self.cgroup.oom_kills() if self.cgroup else 0
        try:
            proc = subprocess.Popen(
                self._argv(argv, sandbox_env(env), cwd, timeout, info_w, block_r),
                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                pass_fds=(info_w, block_r), start_new_session=True,
                env={},  # bwrap's own pid 1 keeps its environment: give it none
                user=SANDBOX_UID if self.root else None, group=SANDBOX_GID if self.root else None,
                extra_groups=[] if self.root else None)
        finally:
            os.close(info_w)
            os.close(block_r)
        try:
            child = _read_child_pid(info_r)
            if self.cgroup is not None and child:
                # Only the sandboxed child: each move into a v1 cgroup can wait for an RCU
                # grace period, and bwrap's own monitor process runs nothing of the command.
                self.cgroup.add(child)
            os.write(block_w, b"go")
        except OSError:
            pass  # bwrap failed early; its stderr says why
        finally:
            os.close(block_w)
            os.close(info_r)
        out, err, timed_out = _pump(proc, deadline, self.config.output_bytes)
        if timed_out:
            _kill(proc)
        code = proc.wait()
        if self.cgroup is not None:
            self.cgroup.kill_all()
        oom = self.cgroup is not None and self.cgroup.oom_kills() > oom_before
        reason = "timeout" if timed_out else "oom" if oom else \
            "killed" if code < 0 or code == 128 + signal.SIGKILL else "exit"
        return ExecResult(128 - code if code < 0 else code, out.text(), err.text(),
                          round(deadline.elapsed(), 4), reason, out.cut, err.cut)

    # -- files -------------------------------------------------------------

    def read_file(self, path: str) -> bytes:
        """Read a workspace file."""
        return self.files.read(path)

    def write_file(self, path: str, data: bytes, mode: int | None = None) -> None:
        """Write a workspace file."""
        self.files.write(path, data, mode)

    def delete_file(self, path: str) -> None:
        """Delete a workspace file."""
        self.files.delete(path)

    def list_files(self) -> list[str]:
        """The workspace's files."""
        return self.files.list()

    def export(self, dest: Path) -> Tree:
        """Copy the workspace out."""
        return self.files.export(dest)

    def provenance(self) -> dict[str, Any]:
        """What ran the build."""
        return {"backend": self.backend, "runtime": None, "image": "host",
                "image_digest": host_image_digest(), "limits": self.config.to_json(),
                "cgroup": self.cgroup.layout.version if self.cgroup else None}

    # -- lifetime ----------------------------------------------------------

    def close(self) -> None:
        """Kill anything left, unmount and remove the workspace."""
        if self.closed:
            return
        self.closed = True
        if self.cgroup is not None:
            self.cgroup.remove()
        _remove_base(self.base, self.mounted)

    def __enter__(self) -> BwrapSandbox:
        return self

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


def _read_child_pid(fd: int) -> int:
    data = b""
    while True:
        chunk = os.read(fd, 4096)
        if not chunk:
            return 0
        data += chunk
        try:
            return int(json.loads(data)["child-pid"])
        except (ValueError, KeyError):
            continue


def _pump(proc: subprocess.Popen[bytes], deadline: Deadline, limit: int
          ) -> tuple[OutputCap, OutputCap, bool]:
    caps = {"out": OutputCap(limit), "err": OutputCap(limit)}
    sel = selectors.DefaultSelector()
    assert proc.stdout is not None and proc.stderr is not None
    sel.register(proc.stdout, selectors.EVENT_READ, "out")
    sel.register(proc.stderr, selectors.EVENT_READ, "err")
    open_streams = 2
    try:
        while open_streams:
            left = deadline.left()
            if left <= 0:
                return caps["out"], caps["err"], True
            for key, _ in sel.select(timeout=min(left, 0.5)):
                chunk = os.read(key.fd, 65536)
                if chunk:
                    caps[key.data].feed(chunk)
                else:
                    sel.unregister(key.fileobj)
                    open_streams -= 1
        try:
            proc.wait(timeout=max(deadline.left(), 0.01))
        except subprocess.TimeoutExpired:
            return caps["out"], caps["err"], True
        return caps["out"], caps["err"], False
    finally:
        sel.close()
        proc.stdout.close()
        proc.stderr.close()


def _kill(proc: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


_LIBC = ctypes.CDLL(None, use_errno=True)
_MS_NOSUID, _MS_NODEV, _MNT_DETACH = 2, 4, 2


def _mount_tmpfs(source: str, target: Path, options: str) -> None:
    """mount(2) a size-limited tmpfs (a syscall, not a mount(8) process per sandbox)."""
    if _LIBC.mount(source.encode(), str(target).encode(), b"tmpfs", _MS_NOSUID | _MS_NODEV,
                   options.encode()) != 0:
        err = ctypes.get_errno()
        raise SandboxError(f"cannot mount the workspace tmpfs: {os.strerror(err)}")


def _remove_base(base: Path, mounted: bool) -> None:
    ws = base / "ws"
    if mounted or os.path.ismount(ws):
        _LIBC.umount2(str(ws).encode(), _MNT_DETACH)
    shutil.rmtree(base, ignore_errors=True)


def prune(everything: bool = False) -> list[str]:
    """Remove leftover workspaces and cgroups of crashed runs."""
    removed = cgroups.prune(cgroups.detect(), everything)
    for base in Path(tempfile.gettempdir()).glob(f"{PREFIX}-*"):
        if (base / "workspace.tar").exists():
            continue  # a microVM's folder: its prune stops the VM first
        if everything or not owner_alive(base.name):
            _remove_base(base, mounted=False)
            removed.append(base.name)
    return sorted(set(removed))
