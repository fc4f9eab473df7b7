"""The agent inside a skillc microVM: runs commands and file operations for the host.

Standard library only; it runs as PID 1's child in the guest (Debian's python3).
It speaks length-prefixed JSON (4-byte big-endian length, then UTF-8 JSON) over
the virtio-serial port named ``skillc``. Commands run as uid 65534 with no new
privileges, rlimits on processes and file size, in their own session; when one
ends (or times out) every process of that user is killed. Byte payloads are
base64 in the JSON.
"""

from __future__ import annotations

import base64
import ctypes
import io
import json
import os
import resource
import selectors
import signal
import stat
import struct
import subprocess
import sys
import tarfile
import time
from pathlib import Path
from typing import Any, BinaryIO

WORKDIR = "/workspace"
UID = GID = 65534
PORT_NAME = "skillc"
CUT = "\n[... {n} bytes cut by skillc ...]\n"
ENV = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": "/tmp", "LANG": "C.UTF-8",
       "PYTHONDONTWRITEBYTECODE": "1", "SKILLC_SANDBOX": "1"}
PR_SET_NO_NEW_PRIVS = 38


def find_port() -> str:
    """The device of the virtio-serial port named skillc."""
    for _ in range(200):
        base = Path("/sys/class/virtio-ports")
        for port in base.glob("*") if base.exists() else []:
            if (port / "name").read_text().strip() == PORT_NAME:
                return f"/dev/{port.name}"
        time.sleep(0.05)
    raise SystemExit("skillc guest agent: no virtio-serial port named skillc")


def read_msg(fh: BinaryIO) -> dict[str, Any] | None:
    header = fh.read(4)
    if len(header) < 4:
        return None
    (size,) = struct.unpack(">I", header)
    data = b""
    while len(data) < size:
        chunk = fh.read(size - len(data))
        if not chunk:
            return None
        data += chunk
    msg: dict[str, Any] = json.loads(data)
    return msg


def write_msg(fh: BinaryIO, msg: dict[str, Any]) -> None:
    body = json.dumps(msg).encode()
    data = memoryview(struct.pack(">I", len(body)) + body)
    while data:  # a raw write to the port may take only part of a large message
        written = fh.write(data)
        data = data[written or 0:]


def oom_kills() -> int:
    for line in Path("/proc/vmstat").read_text().splitlines():
        if line.startswith("oom_kill "):
            return int(line.split()[1])
    return 0


def reap() -> None:
    """As PID 1 the agent inherits every orphan: collect the dead ones."""
    while True:
        try:
            if os.waitpid(-1, os.WNOHANG)[0] == 0:
                return
        except ChildProcessError:
            return


def kill_user() -> None:
    """Kill every process of the sandbox user, until none is left."""
    for _ in range(200):
        reap()
        found = False
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                if entry.stat().st_uid == UID:
                    os.kill(int(entry.name), signal.SIGKILL)
                    found = True
            except (ProcessLookupError, FileNotFoundError, PermissionError):
                continue
        if not found:
            return
        time.sleep(0.01)


class Cap:
    """Head and tail of a stream, like the host's OutputCap."""

    def __init__(self, limit: int) -> None:
        self.limit, self.head, self.tail, self.total = limit, bytearray(), bytearray(), 0

    def feed(self, chunk: bytes) -> None:
        self.total += len(chunk)
        room = self.limit // 2 - len(self.head)
        if room > 0:
            self.head += chunk[:room]
            chunk = chunk[room:]
        keep = self.limit - self.limit // 2
        self.tail += chunk[-keep:] if keep else b""
        del self.tail[:max(0, len(self.tail) - keep)]

    def text(self) -> tuple[str, int]:
        cut = self.total - len(self.head) - len(self.tail)
        middle = CUT.format(n=cut).encode() if cut else b""
        return (bytes(self.head) + middle + bytes(self.tail)).decode("utf-8", "replace"), cut


def confined(path: str) -> Path:
    """A workspace path that climbs no symlink and leaves nothing."""
    parts = path.split("/")
    if not path or path.startswith("/") or any(p in ("", ".", "..") for p in parts):
        raise ValueError(f"path must be relative and stay inside the workspace: {path}")
    current = Path(WORKDIR)
    for part in parts[:-1]:
        current = current / part
        if current.is_symlink():
            raise ValueError(f"{path}: '{part}' is a symlink")
    return current / parts[-1]


def demote(pids: int, file_bytes: int) -> None:
    os.setsid()
    # The agent shields itself from the OOM killer; its commands must be the first to go.
    Path("/proc/self/oom_score_adj").write_text("1000")
    resource.setrlimit(resource.RLIMIT_NPROC, (pids, pids))
    resource.setrlimit(resource.RLIMIT_FSIZE, (file_bytes, file_bytes))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    resource.setrlimit(resource.RLIMIT_NOFILE, (1024, 1024))
    os.setgroups([])
    os.setgid(GID)
    os.setuid(UID)
    ctypes.CDLL(None).prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)


def run(req: dict[str, Any]) -> dict[str, Any]:
    cwd = WORKDIR if req.get("cwd", ".") == "." else str(confined(req["cwd"]))
    limit = int(req.get("output_bytes", 262144))
    timeout = float(req.get("timeout", 300))
    before, start = oom_kills(), time.monotonic()
    proc = subprocess.Popen(req["argv"], cwd=cwd, env={**ENV, **req.get("env", {})},
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, preexec_fn=lambda: demote(
                                int(req.get("pids", 256)), int(req.get("file_bytes", 2**28))))
    caps = {proc.stdout: Cap(limit), proc.stderr: Cap(limit)}
    sel = selectors.DefaultSelector()
    for stream in caps:
        sel.register(stream, selectors.EVENT_READ)  # type: ignore[arg-type]
    open_streams, timed_out, ended = 2, False, False
    while open_streams:
        left = start + timeout - time.monotonic()
        if left <= 0:
            timed_out = True
            break
        if not ended and proc.poll() is not None:
            ended = True
            kill_user()  # what it left running may hold its output open
        for key, _ in sel.select(timeout=min(left, 0.05 if not ended else 0.5)):
            chunk = os.read(key.fd, 65536)
            if chunk:
                caps[key.fileobj].feed(chunk)  # type: ignore[index]
            else:
                sel.unregister(key.fileobj)
                open_streams -= 1
    if timed_out:
        kill_user()
    code = proc.wait()
    kill_user()
    reap()
    out, out_cut = caps[proc.stdout].text()
    err, err_cut = caps[proc.stderr].text()
    oom = oom_kills() > before
    reason = "timeout" if timed_out else "oom" if oom else \
        "killed" if code == -signal.SIGKILL else "exit"
    return {"exit_code": 128 - code if code < 0 else code, "stdout": out, "stderr": err,
            "duration": round(time.monotonic() - start, 4), "reason": reason,
            "stdout_cut": out_cut, "stderr_cut": err_cut}


def files(req: dict[str, Any]) -> dict[str, Any]:
    op = req["op"]
    if op == "list":
        found = []
        for root, dirs, names in os.walk(WORKDIR):
            rel = os.path.relpath(root, WORKDIR)
            for name in names + [d for d in dirs if os.path.islink(os.path.join(root, d))]:
                found.append(name if rel == "." else f"{rel}/{name}")
        return {"paths": sorted(found)}
    path = confined(req["path"])
    if path.is_symlink() and op != "delete":
        raise ValueError(f"{req['path']}: is a symlink; not following it")
    if op in ("read", "delete") and not path.exists() and not path.is_symlink():
        raise ValueError(f"{req['path']}: no such file")
    if op == "read":
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
        with os.fdopen(fd, "rb") as fh:
            if not stat.S_ISREG(os.fstat(fh.fileno()).st_mode):
                raise ValueError(f"{req['path']}: not a regular file")
            return {"data": base64.b64encode(fh.read()).decode()}
    if op == "write":
        path.parent.mkdir(parents=True, exist_ok=True)
        mode = req.get("mode")
        if path.exists() and not path.is_file():
            raise ValueError(f"{req['path']}: exists and is not a regular file")
        keep = stat.S_IMODE(path.stat().st_mode) if path.exists() else 0o644
        path.write_bytes(base64.b64decode(req["data"]))
        os.chmod(path, keep if mode is None else mode)
        for p in [path, *path.parents]:
            if str(p) == WORKDIR:
                break
            os.chown(p, UID, GID, follow_symlinks=False)
        return {}
    if op == "delete":
        if path.is_dir() and not path.is_symlink():
            raise ValueError(f"{req['path']}: is a folder")
        path.unlink()
        return {}
    raise ValueError(f"unknown operation {op!r}")


def export() -> dict[str, Any]:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        tf.add(WORKDIR, arcname=".", recursive=True)
    return {"data": base64.b64encode(buf.getvalue()).decode()}


def load_workspace(device: str) -> None:
    if os.path.exists(device):
        trusted = {"filter": "fully_trusted"} if hasattr(tarfile, "fully_trusted_filter") else {}
        with open(device, "rb") as fh, tarfile.open(fileobj=fh, mode="r|") as tf:
            tf.extractall(WORKDIR, **trusted)  # type: ignore[arg-type]  # the host wrote it
    for root, dirs, names in os.walk(WORKDIR):
        for name in dirs + names:
            os.chown(os.path.join(root, name), UID, GID, follow_symlinks=False)
    os.chown(WORKDIR, UID, GID)


def main() -> None:
    Path("/proc/self/oom_score_adj").write_text("-1000")
    load_workspace(sys.argv[1] if len(sys.argv) > 1 else "/dev/vdb")
    with open(find_port(), "r+b", buffering=0) as port:
        uptime = float(Path("/proc/uptime").read_text().split()[0])
        write_msg(port, {"op": "ready", "uptime": uptime})
        while (req := read_msg(port)) is not None:
            try:
                if req["op"] == "exec":
                    reply = run(req)
                elif req["op"] == "export":
                    reply = export()
                else:
                    reply = files(req)
                reply["ok"] = True
            except Exception as exc:  # every failure goes back to the host, the agent stays up
                reply = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
            write_msg(port, reply)


if __name__ == "__main__":
    main()
