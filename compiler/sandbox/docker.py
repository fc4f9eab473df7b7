"""The Docker backend: a hardened container per sandbox, driven through the docker SDK.

The container has no network, a read-only root, a private /tmp, no
capabilities, no-new-privileges, pids/memory/CPU limits and runs as a non-root
user; the only writable place is /workspace, a size-limited tmpfs volume that
the backend fills and reads with the archive API (no bind mount of the host,
no Docker socket). Optional ``runtime`` (e.g. ``runsc`` for gVisor).

A keeper process (uid 65533) holds the container open; commands run as uid
65534, so after each command ``kill -KILL -1`` ends everything it left behind
without touching the keeper. File reads and writes go through Docker's archive
API, which resolves paths inside the container's root, never the host's.

gVisor note: its sentry threads count against the host pids cgroup, so with
runsc the host limit is raised and the process limit is enforced inside the
sandbox with RLIMIT_NPROC; a sandbox killed for memory is restarted over the
same workspace volume.
"""

from __future__ import annotations

import base64
import io
import json
import socket
import struct
import tarfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

import docker
import docker.errors
from docker.models.containers import Container
from docker.types import Ulimit

from compiler.errors import EnvironmentError_, PathError, SandboxError
from registry.archive import chunk_reader, extract, tar_tree
from registry.tree import Limits, Tree, check_relpath, make_tree

from .base import (
    LABEL,
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

KEEPER = "65533:65533"
USER = f"{SANDBOX_UID}:{SANDBOX_GID}"
# Run the command, then kill whatever it left running (everything of uid 65534 but this
# shell), repeating while kill still finds something: a forking process can slip past one pass.
WRAPPER = ('"$@"; rc=$?; n=0; while kill -KILL -1 2>/dev/null && [ $n -lt 200 ]; '
           'do n=$((n+1)); done; exit $rc')
# gVisor's ptrace platform backs guest tasks with host threads: far more than guest processes.
RUNSC_HOST_PIDS = 4096


def connect(timeout: float = 60) -> docker.DockerClient:
    """A client for the local engine, or an error that says how to start one."""
    try:
        client = docker.from_env(timeout=int(timeout))
        client.ping()
        return client
    except docker.errors.DockerException as exc:
        raise EnvironmentError_(
            "the Docker engine is not reachable (is dockerd running? start it with "
            f"`dockerd &` or `systemctl start docker`): {exc}") from exc


class DockerSandbox:
    """One hardened container and its workspace volume."""

    backend = "docker"

    def __init__(self, config: SandboxConfig, source: Path | None = None,
                 tree: Tree | None = None, client: docker.DockerClient | None = None) -> None:
        self.config = config
        self.client = client or connect()
        self.api = self.client.api
        self.name = new_name()
        self.closed = False
        self.container: Container | None = None
        self.image_id = image_id(self.client, config.image)
        _check_runtime(self.client, config.runtime)
        try:
            self._create()
            if source is not None and tree is not None:
                self._put(tar_tree(source, tree, SANDBOX_UID, SANDBOX_GID))
        except BaseException:
            self.close()
            raise

    def _create(self) -> None:
        cfg = self.config
        labels = {LABEL: "1"}
        self.client.volumes.create(
            name=self.name, driver="local", labels=labels,
            driver_opts={"type": "tmpfs", "device": "tmpfs",
                         "o": f"size={cfg.disk_mb}m,uid={SANDBOX_UID},gid={SANDBOX_GID},mode=0700"})
        gvisor = cfg.runtime == "runsc"
        ulimits = [Ulimit(name="nofile", soft=1024, hard=1024), Ulimit(name="core", soft=0, hard=0),
                   Ulimit(name="fsize", soft=cfg.file_size_mb * 1024 * 1024,
                          hard=cfg.file_size_mb * 1024 * 1024)]
        if gvisor:
            ulimits.append(Ulimit(name="nproc", soft=cfg.pids, hard=cfg.pids))
        memory = f"{cfg.memory_mb}m"
        try:
            self.container = self.client.containers.create(
                cfg.image, ["sleep", "infinity"], name=self.name, labels=labels, user=KEEPER,
                network_mode="none", read_only=True, cap_drop=["ALL"],
                security_opt=["no-new-privileges"], init=True, hostname="sandbox",
                pids_limit=max(RUNSC_HOST_PIDS, cfg.pids * 16) if gvisor else cfg.pids,
                mem_limit=memory, memswap_limit=memory, nano_cpus=int(cfg.cpus * 1e9),
                tmpfs={"/tmp": "size=256m,mode=1777,nosuid,nodev"}, working_dir=WORKDIR,
                volumes={self.name: {"bind": WORKDIR, "mode": "rw"}}, environment={},
                ulimits=ulimits, runtime=cfg.runtime or None, ipc_mode="private")
            self.container.start()
        except docker.errors.APIError as exc:
            raise SandboxError(f"cannot start the sandbox container: {exc.explanation or exc}"
                               ) from exc

    # -- running commands -------------------------------------------------

    def exec(self, argv: Sequence[str], *, timeout: float | None = None,
             env: Mapping[str, str] | None = None, cwd: str = ".") -> ExecResult:
        """Run one command as uid 65534 in the workspace; kill what it leaves behind."""
        if self.closed or self.container is None:
            raise SandboxError("sandbox is closed")
        if not argv:
            raise SandboxError("empty command")
        workdir = WORKDIR if cwd == "." else f"{WORKDIR}/{check_relpath(cwd)}"
        deadline = Deadline(timeout or self.config.exec_timeout)
        since = int(time.time())
        try:
            exec_id = self.api.exec_create(
                self.container.id, ["/bin/sh", "-c", WRAPPER, "sh", *argv], user=USER,
                workdir=workdir, environment=sandbox_env(env), stdin=False, tty=False)["Id"]
            sock = self.api.exec_start(exec_id, socket=True)
        except docker.errors.APIError as exc:
            raise SandboxError(f"docker exec failed: {exc.explanation or exc}") from exc
        out, err, timed_out = self._pump(sock, deadline)
        if timed_out:
            self._kill_all()
        try:
            code = self.api.exec_inspect(exec_id).get("ExitCode")
        except docker.errors.NotFound:  # the container died and took the exec record with it
            code = None
        died = (code is None or code >= 126) and self._died(patient=code in (None, 128))
        reason, code = self._ending(code, timed_out, died, since)
        return ExecResult(code, out.text(), err.text(), round(deadline.elapsed(), 4), reason,
                          out.cut, err.cut)

    def _ending(self, code: int | None, timed_out: bool, died: bool, since: int) -> tuple[str, int]:
        if died:
            assert self.container is not None
            self.container.reload()
            oom = bool(self.container.attrs["State"].get("OOMKilled"))
            self.container.start()  # the workspace volume outlives the container's processes
            return ("oom" if oom else "killed"), 137
        if timed_out:
            return "timeout", 137
        if code is None:
            return "killed", 137
        if code == 137 and self._oom_since(since):
            return "oom", code
        return ("killed" if code == 137 else "exit"), code

    def _oom_since(self, since: int) -> bool:
        assert self.container is not None
        events = self.api.events(since=since, until=int(time.time()) + 1, decode=True,
                                 filters={"container": self.container.id, "event": "oom"})
        return any(True for _ in events)

    def _pump(self, sock: Any, deadline: Deadline) -> tuple[OutputCap, OutputCap, bool]:
        """Read the multiplexed exec stream until it ends, the deadline, or the container dies."""
        raw: socket.socket = sock._sock
        caps = {1: OutputCap(self.config.output_bytes), 2: OutputCap(self.config.output_bytes)}
        buf = b""
        last_check = time.monotonic()
        try:
            while True:
                if deadline.left() <= 0:
                    return caps[1], caps[2], True
                raw.settimeout(min(0.5, max(deadline.left(), 0.01)))
                try:
                    chunk = raw.recv(65536)
                except TimeoutError:
                    if time.monotonic() - last_check > 1.0:
                        last_check = time.monotonic()
                        if not self._running():
                            return caps[1], caps[2], False
                    continue
                if not chunk:
                    return caps[1], caps[2], False
                buf += chunk
                while len(buf) >= 8:
                    kind, size = buf[0], struct.unpack(">I", buf[4:8])[0]
                    if len(buf) < 8 + size:
                        break
                    caps.get(kind, caps[2]).feed(buf[8:8 + size])
                    buf = buf[8 + size:]
        finally:
            sock.close()

    def _died(self, patient: bool) -> bool:
        """Whether the container stopped; ``patient`` waits a moment for the engine to notice
        (a gVisor sandbox killed for memory ends its exec streams before it is marked exited)."""
        for _ in range(10 if patient else 1):
            if not self._running():
                return True
            if patient:
                time.sleep(0.1)
        return False

    def _running(self) -> bool:
        assert self.container is not None
        try:
            self.container.reload()
        except docker.errors.NotFound:
            return False
        return bool(self.container.attrs["State"].get("Running"))

    def _kill_all(self) -> None:
        """End every process of the command; restarting is the one way that cannot fail.

        (A process table full of the command's children leaves no room for a killer
        process.) The workspace volume is kept."""
        assert self.container is not None
        try:
            self.container.restart(timeout=0)
        except docker.errors.APIError as exc:
            raise SandboxError(f"cannot stop the timed-out command: {exc}") from exc

    # -- files -------------------------------------------------------------

    def _put(self, data: bytes) -> None:
        assert self.container is not None
        try:
            self.container.put_archive(WORKDIR, data)
        except docker.errors.APIError as exc:
            raise SandboxError(f"cannot copy into the sandbox: {exc.explanation or exc}") from exc

    def read_file(self, path: str) -> bytes:
        """Read a workspace file (never through a symlink at its last component)."""
        assert self.container is not None
        try:
            stream, stat = self.container.get_archive(f"{WORKDIR}/{check_relpath(path)}")
        except docker.errors.NotFound:
            raise PathError(f"{path}: no such file") from None
        if (stat or {}).get("linkTarget"):
            raise PathError(f"{path}: is a symlink; not following it")
        with tarfile.open(fileobj=chunk_reader(stream), mode="r|") as tf:
            for member in tf:
                if not member.isreg():
                    raise PathError(f"{path}: not a regular file")
                if member.size > self.config.file_size_mb * 1024 * 1024:
                    raise PathError(f"{path}: over the per-file limit")
                fh = tf.extractfile(member)
                assert fh is not None
                return fh.read()
        raise PathError(f"{path}: no such file")

    def _stat(self, path: str) -> dict[str, Any] | None:
        """Docker's stat of a workspace path (HEAD on the archive endpoint), or None."""
        assert self.container is not None
        url = f"{self.api.base_url}/v{self.api.api_version}/containers/{self.container.id}/archive"
        response = self.api.head(url, params={"path": f"{WORKDIR}/{path}"})
        if response.status_code != 200:
            return None
        header = response.headers.get("X-Docker-Container-Path-Stat", "")
        stat: dict[str, Any] = json.loads(base64.b64decode(header)) if header else {}
        return stat

    def write_file(self, path: str, data: bytes, mode: int | None = None) -> None:
        """Create or replace a workspace file (folders are created)."""
        parts = check_relpath(path).split("/")
        if mode is None:
            stat = self._stat(path)
            mode = stat["mode"] & 0o777 if stat else 0o644
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as tf:
            for i in range(1, len(parts)):
                info = tarfile.TarInfo("/".join(parts[:i]))
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                info.uid, info.gid = SANDBOX_UID, SANDBOX_GID
                tf.addfile(info)
            info = tarfile.TarInfo(path)
            info.size, info.mode, info.mtime = len(data), mode & 0o777, int(time.time())
            info.uid, info.gid = SANDBOX_UID, SANDBOX_GID
            tf.addfile(info, io.BytesIO(data))
        self._put(buf.getvalue())

    def delete_file(self, path: str) -> None:
        """Remove a workspace file or symlink."""
        result = self.exec(["rm", "--", check_relpath(path)], timeout=30)
        if not result.ok:
            raise PathError(f"{path}: {result.stderr.strip() or 'cannot delete'}")

    def list_files(self) -> list[str]:
        """Every file and symlink of the workspace."""
        result = self.exec(["find", ".", "(", "-type", "f", "-o", "-type", "l", ")", "-print0"],
                           timeout=60)
        if not result.ok:
            raise SandboxError(f"cannot list the workspace: {result.stderr.strip()}")
        return sorted(p.removeprefix("./") for p in result.stdout.split("\0") if p)

    def export(self, dest: Path) -> Tree:
        """Copy the workspace out through the archive API, checking every member."""
        assert self.container is not None
        stream, _ = self.container.get_archive(WORKDIR + "/.")
        limits = Limits(max_files=100_000, max_total_bytes=self.config.disk_mb * 1024 * 1024,
                        max_file_bytes=self.config.file_size_mb * 1024 * 1024)
        tree = extract(chunk_reader(stream), dest, limits=limits)
        return make_tree(tree.entries)

    def provenance(self) -> dict[str, Any]:
        """What ran the build."""
        return {"backend": self.backend, "runtime": self.config.runtime or "runc",
                "image": self.config.image, "image_digest": self.image_id,
                "limits": self.config.to_json()}

    # -- lifetime ----------------------------------------------------------

    def close(self) -> None:
        """Remove the container and its volume."""
        if self.closed:
            return
        self.closed = True
        _remove(self.client, self.name)

    def __enter__(self) -> DockerSandbox:
        return self

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


def image_id(client: docker.DockerClient, image: str) -> str:
    """The id (config digest) of a local image, or an error saying how to build it."""
    try:
        return str(client.images.get(image).id)
    except docker.errors.ImageNotFound:
        raise EnvironmentError_(f"sandbox image {image} is not built: run "
                                "`skillc sandbox image build`") from None


def _check_runtime(client: docker.DockerClient, runtime: str | None) -> None:
    if runtime and runtime not in client.info().get("Runtimes", {}):
        raise EnvironmentError_(
            f"docker runtime {runtime!r} is not registered: add it to /etc/docker/daemon.json "
            '("runtimes": {"runsc": {"path": "/usr/bin/runsc", "runtimeArgs": '
            '["--network=none"]}}) and restart dockerd')


def _remove(client: docker.DockerClient, name: str) -> None:
    try:
        client.containers.get(name).remove(force=True, v=True)
    except docker.errors.NotFound:
        pass
    except docker.errors.APIError:
        pass  # prune will retry
    try:
        client.volumes.get(name).remove(force=True)
    except docker.errors.NotFound:
        pass
    except docker.errors.APIError:
        time.sleep(0.2)
        try:
            client.volumes.get(name).remove(force=True)
        except docker.errors.DockerException:
            pass


def prune(everything: bool = False, client: docker.DockerClient | None = None) -> list[str]:
    """Remove sandbox containers and volumes of crashed runs."""
    client = client or connect()
    names = {c.name for c in client.containers.list(all=True, filters={"label": LABEL})}
    names |= {v.name for v in client.volumes.list(filters={"label": LABEL})}
    removed = sorted(n for n in names if n and n.startswith(PREFIX)
                     and (everything or not owner_alive(n)))
    for name in removed:
        _remove(client, name)
    return removed
