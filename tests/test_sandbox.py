"""The Sandbox protocol on every backend, host-side confinement, prune, and the CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from compiler.errors import EnvironmentError_, PathError, SandboxError, TreeError
from compiler.sandbox import SandboxConfig, open_sandbox
from compiler.sandbox.base import OutputCap
from compiler.sandbox.cgroups import Cgroup, detect
from registry.tree import scan
from tests.conftest import HOSTAPP, REPO, Invoke
from tests.sandboxes import ALL, config_for
from tests.test_sandbox_isolation import host_state


@pytest.fixture(params=ALL)
def config(request: pytest.FixtureRequest) -> SandboxConfig:
    return config_for(request.param, memory_mb=256, pids=64, disk_mb=64)


def test_workspace_round_trip(config: SandboxConfig, tmp_path: Path) -> None:
    before = host_state()
    with open_sandbox(config, HOSTAPP) as box:
        assert "hostapp/core.py" in box.list_files()
        assert box.read_file("hostapp.toml") == (HOSTAPP / "hostapp.toml").read_bytes()
        box.write_file("new/dir/tool.sh", b"#!/bin/sh\necho tool $GREETING\n", 0o755)
        r = box.exec(["./tool.sh"], cwd="new/dir", env={"GREETING": "hi"})
        assert (r.ok, r.stdout) == (True, "tool hi\n")
        box.delete_file("README.md")
        r = box.exec(["python3", "-m", "unittest", "discover", "-s", "tests"])
        assert r.ok, r.stderr
        tree = box.export(tmp_path / "out")
    paths = tree.by_path()
    assert "README.md" not in paths and paths["new/dir/tool.sh"].mode == 0o755
    assert (tmp_path / "out" / "new/dir/tool.sh").read_text().startswith("#!/bin/sh")
    assert tree.digest == scan(tmp_path / "out").digest
    assert host_state() == before


@pytest.mark.parametrize("bad", ["../escape", "/etc/passwd", "a/../../b", ""])
def test_paths_must_stay_inside(config: SandboxConfig, bad: str) -> None:
    with open_sandbox(config) as box:
        with pytest.raises(PathError):
            box.write_file(bad, b"x")
        with pytest.raises(PathError):
            box.read_file(bad)


def test_missing_file_and_closed_sandbox(config: SandboxConfig) -> None:
    box = open_sandbox(config)
    with pytest.raises(PathError, match="no such file"):
        box.read_file("nope.txt")
    box.close()
    box.close()
    with pytest.raises(SandboxError, match="closed"):
        box.exec(["true"])


def test_cleanup_after_an_exception(config: SandboxConfig) -> None:
    before = host_state()
    with pytest.raises(RuntimeError), open_sandbox(config) as box:
        box.exec(["sh", "-c", "sleep 100 &"])
        raise RuntimeError("boom")
    assert host_state() == before


def test_hostile_output_is_refused_on_export(config: SandboxConfig, tmp_path: Path) -> None:
    with open_sandbox(config) as box:
        assert box.exec(["mkfifo", "pipe"]).ok
        if config.runtime == "runsc":  # gVisor keeps named pipes in its own kernel, off the volume
            assert "pipe" not in box.export(tmp_path / "out").by_path()
            return
        with pytest.raises(TreeError, match="pipe"):
            box.export(tmp_path / "out")


def test_bwrap_host_side_never_follows_symlinks(tmp_path: Path) -> None:
    with open_sandbox(config_for("bwrap")) as box:
        assert box.exec(["sh", "-c", f"ln -s {tmp_path} escape && ln -s /etc/passwd pw"]).ok
        with pytest.raises(PathError, match="symlink"):
            box.write_file("escape/pwned", b"x")
        with pytest.raises(PathError, match="symlink"):
            box.read_file("pw")
        with pytest.raises(PathError, match="symlink"):
            box.read_file("escape/anything")
    assert not (tmp_path / "pwned").exists()


def test_unknown_backend_and_runtime() -> None:
    with pytest.raises(Exception, match="unknown sandbox backend 'lxc'"):
        open_sandbox(SandboxConfig(backend="lxc"))
    config = config_for("docker")
    with pytest.raises(EnvironmentError_, match="runtime 'kata' is not registered"):
        open_sandbox(SandboxConfig(backend="docker", image=config.image, runtime="kata"))
    with pytest.raises(EnvironmentError_, match="skillc sandbox image build"):
        open_sandbox(SandboxConfig(backend="docker", image="skillc-missing:none"))


CRASH = """
import os, sys
from compiler.sandbox import open_sandbox, SandboxConfig
box = open_sandbox(SandboxConfig(backend=sys.argv[1], memory_mb=128, pids=32))
box.exec(["true"])
print(box.name, flush=True)
os._exit(0)  # a crash: no close
"""


@pytest.mark.parametrize("kind", [p for p in ALL if p.values[0] != "runsc"])
def test_prune_removes_what_a_crash_left(kind: str, invoke: Invoke) -> None:
    config_for(kind)
    before = host_state()
    name = subprocess.run([sys.executable, "-c", CRASH, kind], capture_output=True, text=True,
                          check=True, cwd=REPO).stdout.strip()
    assert name.startswith("skillc-sbx-")
    assert host_state() != before
    result = invoke("sandbox", "prune", "--json")
    assert name in json.loads(result.stdout)[kind]
    assert host_state() == before


def test_prune_spares_live_sandboxes(invoke: Invoke) -> None:
    with open_sandbox(config_for("bwrap")) as box:
        assert box.name not in json.loads(invoke("sandbox", "prune", "--json").stdout)["bwrap"]
        assert box.exec(["true"]).ok


def test_output_cap_keeps_head_and_tail() -> None:
    cap = OutputCap(10)
    for chunk in (b"0123", b"456789", b"abcdefghij"):
        cap.feed(chunk)
    assert cap.text() == "01234\n[... 10 bytes cut by skillc ...]\nfghij"
    assert cap.cut == 10


def test_cgroup_v2_layout_on_a_fake_root(tmp_path: Path) -> None:
    (tmp_path / "cgroup.controllers").write_text("cpu io memory pids\n")
    (tmp_path / "cgroup.subtree_control").write_text("cpu\n")
    layout = detect(tmp_path)
    assert layout is not None and layout.version == 2
    group = Cgroup.create(layout, "skillc-sbx-1-ab", pids=50, memory_mb=64)
    assert (tmp_path / "cgroup.subtree_control").read_text() == "+memory +pids"
    assert (tmp_path / "skillc-sbx-1-ab" / "pids.max").read_text() == "50"
    assert (tmp_path / "skillc-sbx-1-ab" / "memory.max").read_text() == str(64 * 2**20)
    (tmp_path / "skillc-sbx-1-ab" / "memory.events").write_text("low 0\noom 2\noom_kill 3\n")
    assert group.oom_kills() == 3
    group.add(12345)
    assert (tmp_path / "skillc-sbx-1-ab" / "cgroup.procs").read_text() == "12345"


# -- CLI -------------------------------------------------------------------

def test_cli_run_passes_the_exit_code(invoke: Invoke, tmp_path: Path) -> None:
    config_for("bwrap")
    r = invoke("sandbox", "run", "--workspace", HOSTAPP, "--", "sh", "-c",
               "cat hostapp.toml | head -1; echo oops >&2; exit 7")
    assert r.exit_code == 7
    assert r.stdout.startswith("# hostapp configuration")
    assert "oops" in r.stderr
    r = invoke("sandbox", "run", "--timeout", "1", "--", "sleep", "30")
    assert r.exit_code == 124 and "ended by timeout" in r.stderr
    keep = tmp_path / "kept"
    r = invoke("sandbox", "run", "--keep-output", keep, "--json", "--", "sh", "-c", "echo hi > made")
    assert r.exit_code == 0 and json.loads(r.stdout)["reason"] == "exit"
    assert (keep / "made").read_text() == "hi\n"
    r = invoke("sandbox", "run", "--keep-output", keep, "--", "true")
    assert r.exit_code == 1 and "not empty" in r.stderr


def test_cli_run_docker_gvisor(invoke: Invoke) -> None:
    config_for("runsc")
    r = invoke("sandbox", "run", "--backend", "docker", "--runtime", "runsc", "--", "sh", "-c",
               "dmesg 2>/dev/null | head -1; exit 3")
    assert r.exit_code == 3
    assert "gVisor" in r.stdout  # the guest kernel is gVisor's, not the host's


def test_doctor_reports_each_backend(invoke: Invoke) -> None:
    config_for("docker")
    config_for("microvm")
    r = invoke("sandbox", "doctor", "--json")
    checks = {(c["backend"], c["name"]): c for c in json.loads(r.stdout)}
    assert checks[("bwrap", "runs")]["level"] == "ok"
    assert checks[("docker", "image")]["level"] == "ok"
    assert {("docker", "runc"), ("docker", "runsc"), ("bwrap", "limits")} <= set(checks)
    assert checks[("microvm", "boots")]["level"] == "ok"
    accel = checks[("microvm", "accel")]
    assert accel["detail"].startswith(("kvm", "tcg: "))
    assert accel["level"] == ("ok" if accel["detail"].startswith("kvm") else "warn")


def test_doctor_says_how_to_fix(invoke: Invoke, monkeypatch: pytest.MonkeyPatch,
                                tmp_path: Path) -> None:
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-docker.sock")
    monkeypatch.setenv("PATH", str(tmp_path))
    r = invoke("sandbox", "doctor", "--json")
    assert r.exit_code == 3
    checks = {c["backend"]: c for c in json.loads(r.stdout)}
    assert checks["bwrap"]["fix"] == "apt-get install bubblewrap"
    assert checks["microvm"]["fix"] == "apt-get install qemu-system-x86"
    assert "not reachable" in checks["docker"]["detail"]
    assert "dockerd" in checks["docker"]["fix"]
    monkeypatch.delenv("DOCKER_HOST")
    monkeypatch.setenv("PATH", os.defpath)
    config_for("docker")
    r = invoke("sandbox", "doctor", "--backend", "docker", "--image", "skillc-missing:none",
               "--json")
    assert r.exit_code == 3
    image = next(c for c in json.loads(r.stdout) if c["name"] == "image")
    assert (image["detail"], image["fix"]) == ("skillc-missing:none is not built",
                                               "skillc sandbox image build")


def test_image_build_if_missing_records_the_digest(invoke: Invoke) -> None:
    config = config_for("docker")
    r = invoke("sandbox", "image", "build", "--if-missing", "--json")
    record = json.loads(r.stdout)
    import docker

    assert record["digest"] == docker.from_env().images.get(config.image).id
    with open_sandbox(config) as box:
        assert box.provenance()["image_digest"] == record["digest"]


def test_image_build_from_a_dockerfile(invoke: Invoke, tmp_path: Path) -> None:
    config = config_for("docker")
    dockerfile = tmp_path / "Dockerfile"
    dockerfile.write_text(f"FROM {config.image}\nLABEL skillc.test=dockerfile\n")
    r = invoke("sandbox", "image", "build", "--name", "skillc-test:dockerfile", "--dockerfile",
               dockerfile, "--json")
    assert r.exit_code == 0, r.output
    record = json.loads(r.stdout)
    import docker

    client = docker.from_env()
    try:
        assert record["method"] == "dockerfile"
        assert record["digest"] == client.images.get("skillc-test:dockerfile").id
        with open_sandbox(SandboxConfig(backend="docker", image="skillc-test:dockerfile")) as box:
            assert box.provenance()["image_digest"] == record["digest"]
    finally:
        client.images.remove("skillc-test:dockerfile", force=True)
    missing = invoke("sandbox", "image", "build", "--dockerfile", tmp_path / "nope")
    assert missing.exit_code == 1 and "no such Dockerfile" in missing.stderr
