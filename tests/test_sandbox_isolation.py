"""The isolation suite: every escape attempt is blocked and reported cleanly, on every backend
this machine provides (bwrap, docker+runc, docker+runsc), and the host is unchanged afterwards."""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from compiler.errors import TreeError
from compiler.sandbox import SandboxConfig, open_sandbox
from compiler.sandbox.base import PREFIX
from tests.sandboxes import ALL, config_for

TOKEN = "sk-ant-fake-" + secrets.token_hex(8)


def host_state() -> dict[str, object]:
    """What a sandbox could leave behind on the host."""
    state: dict[str, object] = {
        "tmp": sorted(p.name for p in Path(tempfile.gettempdir()).glob(f"{PREFIX}-*")),
        "mounts": [line for line in Path("/proc/mounts").read_text().splitlines() if PREFIX in line],
        "cgroups": sorted(str(p) for p in Path("/sys/fs/cgroup").glob(f"*/{PREFIX}-*")),
        "processes": subprocess.run(["pgrep", "-f", f"{PREFIX}-[0-9]"], capture_output=True,
                                    text=True).stdout.split(),
    }
    try:
        import docker

        client = docker.from_env(timeout=10)
        state["containers"] = sorted(c.name for c in client.containers.list(
            all=True, filters={"label": "skillc.sandbox"}))
        state["volumes"] = sorted(v.name for v in client.volumes.list(
            filters={"label": "skillc.sandbox"}))
    except Exception:
        pass
    return state


@pytest.fixture(params=ALL)
def config(request: pytest.FixtureRequest) -> SandboxConfig:
    return config_for(request.param, memory_mb=256, pids=64, disk_mb=64)


@pytest.fixture
def host(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A host secret and a fake API key in the host env; the host must be unchanged after."""
    monkeypatch.setenv("ANTHROPIC_API_KEY", TOKEN)
    secret = tmp_path / "host-secret.txt"
    secret.write_text(TOKEN)
    os.chmod(tmp_path, 0o755)
    secret.chmod(0o644)  # readable by anyone on the host: only isolation keeps it out
    before = host_state()
    yield secret
    assert host_state() == before
    assert secret.read_text() == TOKEN


def sh(box, script: str, timeout: float = 30):  # type: ignore[no-untyped-def]
    return box.exec(["sh", "-c", script], timeout=timeout)


def test_host_files_are_out_of_reach(config: SandboxConfig, host: Path) -> None:
    with open_sandbox(config) as box:
        r = sh(box, f"cat {host}; cat /etc/shadow; ls /root; cat /proc/1/root/etc/hostname")
    assert r.exit_code != 0
    assert TOKEN not in r.stdout + r.stderr


def test_host_environment_is_not_visible(config: SandboxConfig, host: Path) -> None:
    with open_sandbox(config) as box:
        r = sh(box, "env; cat /proc/*/environ 2>/dev/null | tr '\\0' '\\n'")
    assert r.ok
    assert TOKEN not in r.stdout
    assert "ANTHROPIC_API_KEY" not in r.stdout
    assert "SKILLC_SANDBOX=1" in r.stdout


def test_writes_outside_the_workspace_fail(config: SandboxConfig, host: Path) -> None:
    target = host.parent / "pwned"
    with open_sandbox(config) as box:
        results = [sh(box, f"echo x > {path}") for path in
                   ("/usr/pwned", "/etc/pwned", "/pwned", str(target), "/proc/sys/kernel/pwned")]
        inside = sh(box, "echo ok > /tmp/scratch && echo ok > in-workspace && cat /tmp/scratch")
        assert inside.ok and inside.stdout == "ok\n"
        assert box.read_file("in-workspace") == b"ok\n"
    assert all(r.exit_code != 0 for r in results)
    assert not target.exists() and not Path("/usr/pwned").exists() and not Path("/pwned").exists()
    assert not (Path(tempfile.gettempdir()) / "scratch").exists()


def test_no_network_to_host_or_outside(config: SandboxConfig, host: Path) -> None:
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    server.settimeout(0.2)
    accepted: list[object] = []
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                accepted.append(server.accept())
            except OSError:
                pass

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    port = server.getsockname()[1]
    probe = ("import socket,sys\n"
             f"for addr in [('127.0.0.1', {port}), ('10.255.255.1', 80), ('1.1.1.1', 53)]:\n"
             "    s = socket.socket(); s.settimeout(3)\n"
             "    try:\n        s.connect(addr); print('CONNECTED', addr)\n"
             "    except OSError as e:\n        print('blocked', addr, e)\n"
             "try:\n    socket.getaddrinfo('example.com', 80); print('RESOLVED')\n"
             "except OSError as e:\n    print('dns blocked', e)\n")
    try:
        with open_sandbox(config) as box:
            r = box.exec(["python3", "-c", probe], timeout=60)
    finally:
        stop.set()
        thread.join()
        server.close()
    assert r.ok, r.stderr
    assert "CONNECTED" not in r.stdout and "RESOLVED" not in r.stdout
    assert r.stdout.count("blocked") == 4
    assert accepted == []


def test_fork_bomb_hits_the_process_limit(config: SandboxConfig, host: Path) -> None:
    with open_sandbox(config) as box:
        r = sh(box, "f() { f | f & }; f; sleep 3", timeout=15)
        after = sh(box, "echo alive")
    assert r.reason in ("exit", "timeout") and r.duration < 25
    assert after.ok and after.stdout == "alive\n"
    assert subprocess.run(["true"]).returncode == 0


def test_memory_hog_is_killed_and_reported_as_oom(config: SandboxConfig, host: Path) -> None:
    hog = "x = bytearray(600 * 1024 * 1024)\nprint('survived', len(x))"
    with open_sandbox(config) as box:
        r = box.exec(["python3", "-c", hog], timeout=60)
        after = sh(box, "echo alive")
    assert r.reason == "oom", r
    assert "survived" not in r.stdout
    assert after.ok


def test_filling_the_disk_is_bounded(config: SandboxConfig, host: Path) -> None:
    free_before = os.statvfs("/").f_bavail
    with open_sandbox(config) as box:
        r = sh(box, "dd if=/dev/zero of=fill bs=1M count=200 2>&1; wc -c < fill", timeout=60)
    assert "No space left" in r.stdout
    assert int(r.stdout.split()[-1]) <= config.disk_mb * 2**20
    assert abs(os.statvfs("/").f_bavail - free_before) * os.statvfs("/").f_frsize < 100 * 2**20


def test_endless_loop_is_killed_at_the_timeout(config: SandboxConfig, host: Path) -> None:
    with open_sandbox(config) as box:
        r = box.exec(["python3", "-c", "while True: pass"], timeout=2)
        after = sh(box, "echo alive")
    assert r.reason == "timeout"
    assert 2 <= r.duration < 8
    assert after.ok


def test_no_privileges_to_gain(config: SandboxConfig, host: Path) -> None:
    script = ("grep -E '^(CapEff|CapPrm|CapBnd)' /proc/self/status; "
              "python3 -c 'import ctypes; print(\"NoNewPrivs:\t%d\" % "
              "ctypes.CDLL(None).prctl(39, 0, 0, 0, 0))'; "
              "python3 -c 'import os; os.setuid(0)' 2>&1 | tail -1; "
              "touch f && chown 0:0 f 2>&1; mkdir -p m && mount -t tmpfs none m 2>&1; "
              "id -u")
    with open_sandbox(config) as box:
        r = sh(box, script)
        userns = sh(box, "unshare -U -r id -u 2>&1")
    status = dict(line.split(":\t") for line in r.stdout.splitlines() if ":\t" in line)
    assert status["CapEff"] == status["CapPrm"] == "0000000000000000"
    assert status["NoNewPrivs"] == "1"
    assert "PermissionError" in r.stdout or "Invalid argument" in r.stdout  # EPERM or unmapped
    assert "must be superuser" in r.stdout or "Operation not permitted" in r.stdout
    assert r.stdout.strip().endswith("65534")
    if config.runtime != "runsc":  # gVisor may grant a user namespace; its kernel is not the host's
        assert userns.exit_code != 0


def test_docker_socket_is_unreachable(config: SandboxConfig, host: Path) -> None:
    probe = ("import socket\nfor p in ['/var/run/docker.sock', '/run/docker.sock', "
             "'/run/containerd/containerd.sock']:\n    s = socket.socket(socket.AF_UNIX)\n"
             "    try:\n        s.connect(p); print('CONNECTED', p)\n"
             "    except OSError as e:\n        print('blocked', p)\n")
    with open_sandbox(config) as box:
        r = box.exec(["python3", "-c", probe])
    assert r.ok and "CONNECTED" not in r.stdout and r.stdout.count("blocked") == 3


def test_symlink_to_a_host_file_is_not_exported(config: SandboxConfig, host: Path,
                                                tmp_path: Path) -> None:
    dest = tmp_path / "export"
    with open_sandbox(config) as box:
        assert sh(box, f"ln -s {host} leak && echo made").ok
        with pytest.raises(TreeError, match="symlink points outside the tree"):
            box.export(dest)
        with pytest.raises(Exception, match="symlink"):
            box.read_file("leak")
    leaked = [p for p in dest.rglob("*") if p.is_file() and TOKEN in p.read_text(errors="replace")]
    assert leaked == []


def test_nothing_keeps_running_after_close(config: SandboxConfig, host: Path) -> None:
    marker = str(300 + secrets.randbelow(600) + 0.25)
    with open_sandbox(config) as box:
        r = sh(box, f"nohup sleep {marker} >/dev/null 2>&1 & setsid sleep {marker} & echo started")
        assert r.ok
    left = subprocess.run(["pgrep", "-f", f"sleep {marker}"], capture_output=True, text=True)
    assert left.stdout == ""


def test_background_processes_do_not_outlive_their_command(config: SandboxConfig,
                                                           host: Path) -> None:
    with open_sandbox(config) as box:
        sh(box, "sleep 300 & echo $! > pid")
        r = sh(box, "kill -0 $(cat pid) 2>/dev/null && echo RUNNING || echo gone")
    assert r.stdout.strip() == "gone"


def test_output_is_capped_with_a_marker(config: SandboxConfig, host: Path) -> None:
    small = SandboxConfig(**{**config.to_json(), "output_bytes": 1000})
    with open_sandbox(small) as box:
        r = sh(box, "yes abc | head -c 100000")
    assert r.stdout_cut == 100000 - 1000
    assert "[... 99000 bytes cut by skillc ...]" in r.stdout
    assert r.stdout.startswith("abc\nabc") and r.stdout.endswith("abc\n")
