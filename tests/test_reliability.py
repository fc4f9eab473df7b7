"""Crash consistency and concurrency of the registry: SIGKILL at many points of publish and
build, eight processes at once, hostile archives and trees."""

from __future__ import annotations

import io
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import pytest

from compiler.catalog import open_local
from compiler.errors import TreeError
from registry.archive import extract
from tests.conftest import REPO, SPECS, Invoke
from tests.sandboxes import config_for
from tests.test_registry import bump
from tests.test_sandbox_isolation import host_state


def worker(*args: str | Path) -> subprocess.Popen[str]:
    proc = subprocess.Popen([sys.executable, "-m", "tests.crash_worker", *map(str, args)],
                            cwd=REPO, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    return proc


def go(proc: subprocess.Popen[str]) -> float:
    assert proc.stdin is not None
    proc.stdin.write("go\n")
    proc.stdin.flush()
    return time.perf_counter()


def timed_run(*args: str | Path) -> float:
    proc = worker(*args)
    start = go(proc)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    return time.perf_counter() - start


def kill_after(delay: float, *args: str | Path) -> bool:
    """Run an operation and SIGKILL it after ``delay``; True if it finished first."""
    proc = worker(*args)
    start = go(proc)
    while time.perf_counter() - start < delay and proc.poll() is None:
        time.sleep(0.0005)
    finished = proc.poll() is not None
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=60)
    return finished


def deployment(tmp_path: Path, fork: Path) -> Path:
    path = tmp_path / "dep.toml"
    path.write_text(f'name = "dev"\ntarget = "{fork}"\n[sandbox]\nbackend = "bwrap"\n'
                    '[agent]\nbackend = "reference"\n')
    return path


def test_publish_killed_at_any_point_is_all_or_nothing(tmp_path: Path, invoke: Invoke) -> None:
    folder = shutil.copytree(SPECS / "add-webhook", tmp_path / "add-webhook")
    bump(folder, "0.0.1")
    full = timed_run("publish", folder)
    outcomes = []
    for i in range(12):
        bump(folder, f"0.1.{i}")
        kill_after(full * i / 10, "publish", folder)
        versions = [r.version for r in open_local().index.versions("add-webhook")]
        present = f"0.1.{i}" in versions
        outcomes.append(present)
        assert invoke("registry", "verify").exit_code == 0
        if present:
            assert invoke("show", f"add-webhook@0.1.{i}").exit_code == 0
    assert not outcomes[0] and outcomes[-1]  # killed before it began, and after it ended
    assert invoke("registry", "gc", "--grace", "0").exit_code == 0
    assert invoke("registry", "verify").exit_code == 0


def test_build_killed_at_any_point_is_all_or_nothing(tmp_path: Path, fork: Path,
                                                     invoke: Invoke) -> None:
    config_for("bwrap")
    dep = deployment(tmp_path, fork)
    spec = SPECS / "add-scheduler"
    before = host_state()
    full = timed_run("build", spec, dep)
    counts = [len(open_local().index.builds())]
    for i in range(10):
        kill_after(full * i / 8, "build", spec, dep)
        rows = open_local().index.builds()
        assert len(rows) - counts[-1] in (0, 1)  # the whole build recorded, or none of it
        counts.append(len(rows))
        for row in rows:
            assert row.status == "passed" and row.output_tree and row.manifest
        assert invoke("registry", "verify").exit_code == 0
        invoke("sandbox", "prune")
    assert counts[1] == counts[0] and counts[-1] == counts[-2] + 1
    assert host_state() == before


def test_eight_processes_at_once_lose_nothing(tmp_path: Path, fork: Path, invoke: Invoke) -> None:
    config_for("bwrap")
    dep = deployment(tmp_path, fork)
    procs = []
    for i in range(8):
        folder = shutil.copytree(SPECS / "add-scheduler", tmp_path / f"s{i}" / "add-scheduler")
        bump(folder, f"2.0.{i}", extra=f"\nVariant {i}.\n")
        procs.append(worker("publish-build", folder, dep))
    for proc in procs:
        go(proc)
    for proc in procs:
        _, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, err
    reg = open_local()
    assert sorted(r.version for r in reg.index.versions("add-scheduler")) == \
        [f"2.0.{i}" for i in range(8)]
    builds = reg.index.builds()
    assert len(builds) == 8 and all(b.status == "passed" for b in builds)
    assert len({b.spec_digest for b in builds}) == 8
    assert invoke("registry", "verify").exit_code == 0


def _tar(*members: tuple[tarfile.TarInfo, bytes | None]) -> io.BytesIO:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        for info, data in members:
            if data is not None:
                info.size = len(data)
            tf.addfile(info, io.BytesIO(data) if data is not None else None)
    buf.seek(0)
    return buf


def _member(name: str, kind: bytes = tarfile.REGTYPE, link: str = "",
            mode: int = 0o644) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname, info.mode = kind, link, mode
    return info


@pytest.mark.parametrize(("member", "data", "message"), [
    (_member("../evil"), b"x", "path must be relative and stay inside its tree"),
    (_member("/etc/evil"), b"x", "absolute path not allowed"),
    (_member("a/../../evil"), b"x", "path must be relative and stay inside its tree"),
    (_member("link", tarfile.SYMTYPE, "/etc/passwd"), None, "symlink points outside the tree"),
    (_member("link", tarfile.SYMTYPE, "../../x"), None, "symlink points outside the tree"),
    (_member("hard", tarfile.LNKTYPE, "other"), None, "hard links are not allowed"),
    (_member("dev", tarfile.CHRTYPE), None, "device files, fifos and sockets are not allowed"),
    (_member("fifo", tarfile.FIFOTYPE), None, "device files, fifos and sockets are not allowed"),
    (_member("suid", mode=0o4755), b"x", "setuid/setgid files are not allowed"),
])
def test_hostile_archives_are_refused(tmp_path: Path, member: tarfile.TarInfo, data: bytes | None,
                                      message: str) -> None:
    with pytest.raises(TreeError, match=message.replace("(", r"\(")):
        extract(_tar((member, data)), tmp_path / "dest")
    assert not (tmp_path / "evil").exists() and not Path("/etc/evil").exists()


def test_huge_archive_members_are_refused(tmp_path: Path) -> None:
    from registry.tree import Limits

    limits = Limits(max_files=2, max_total_bytes=100, max_file_bytes=60)
    with pytest.raises(TreeError, match="over the per-file limit"):
        extract(_tar((_member("big"), b"x" * 61)), tmp_path / "a", limits=limits)
    with pytest.raises(TreeError, match="more than 100 bytes in all"):
        extract(_tar((_member("a"), b"x" * 60), (_member("b"), b"x" * 60)), tmp_path / "b",
                limits=limits)
    with pytest.raises(TreeError, match="more than 2 files"):
        extract(_tar(*[(_member(f"f{i}"), b"") for i in range(3)]), tmp_path / "c", limits=limits)
    with pytest.raises(TreeError, match="not a valid tar archive"):
        extract(io.BytesIO(b"\x00garbage" * 100), tmp_path / "d")


def test_hostile_forks_are_refused_with_a_clear_message(tmp_path: Path, fork: Path,
                                                        invoke: Invoke) -> None:
    (fork / "secrets").symlink_to("/etc")
    result = invoke("build", SPECS / "add-webhook", "-d", deployment(tmp_path, fork))
    assert result.exit_code == 1
    assert result.stderr.strip() == f"{fork}/secrets: symlink points outside the tree (/etc)"
    (fork / "secrets").unlink()
    os.mkfifo(fork / "pipe")
    result = invoke("build", SPECS / "add-webhook", "-d", deployment(tmp_path, fork))
    assert "pipe: not a regular file, folder or symlink" in result.stderr
