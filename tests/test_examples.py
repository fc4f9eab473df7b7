"""The example host and the example specs: each reference implementation, applied to a
copy of the host, passes the spec's own acceptance tests (no sandbox here)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from compiler import reference
from compiler.spec import load
from tests.conftest import HOSTAPP, SPECS

SPEC_NAMES = sorted(p.name for p in SPECS.iterdir() if (p / "SKILL.md").exists())


def apply_reference(spec_dir: Path, fork: Path, inputs: dict[str, object] | None = None) -> None:
    spec = load(spec_dir)

    def current(path: str) -> str | None:
        target = fork / path
        return target.read_text() if target.exists() else None

    for f in reference.render(spec, reference.defaults(spec, inputs or {}), "test", current):
        (fork / f.path).parent.mkdir(parents=True, exist_ok=True)
        (fork / f.path).write_bytes(f.content)


def run_acceptance(spec_dir: Path, fork: Path) -> subprocess.CompletedProcess[str]:
    shutil.rmtree(fork / ".skillc", ignore_errors=True)
    shutil.copytree(spec_dir / "tests", fork / ".skillc" / "tests")
    command = load(spec_dir).acceptance_command
    assert command
    return subprocess.run(command.replace("python3", sys.executable, 1), shell=True, cwd=fork,
                          capture_output=True, text=True, timeout=120)


def test_hostapp_own_tests_pass(fork: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "unittest", "discover", "-s", "tests"], cwd=fork,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "OK" in proc.stderr


@pytest.mark.parametrize("name", SPEC_NAMES)
def test_reference_passes_its_acceptance_tests(name: str, fork: Path) -> None:
    apply_reference(SPECS / name, fork)
    proc = run_acceptance(SPECS / name, fork)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stderr.rstrip().endswith("OK")


@pytest.mark.parametrize("name", SPEC_NAMES)
def test_acceptance_tests_fail_without_the_integration(name: str, fork: Path) -> None:
    proc = run_acceptance(SPECS / name, fork)
    assert proc.returncode != 0


def test_inputs_reach_the_rendered_files(fork: Path) -> None:
    apply_reference(SPECS / "add-webhook", fork, {"path": "/in/custom", "port": 9911})
    toml = (fork / "hostapp.toml").read_text()
    assert 'path = "/in/custom"' in toml and "port = 9911" in toml
    assert toml.startswith((HOSTAPP / "hostapp.toml").read_text())
    assert run_acceptance(SPECS / "add-webhook", fork).returncode == 0


def test_all_four_skills_together(fork: Path) -> None:
    for name in SPEC_NAMES:
        apply_reference(SPECS / name, fork)
    for name in SPEC_NAMES:
        proc = run_acceptance(SPECS / name, fork)
        assert proc.returncode == 0, (name, proc.stderr[-2000:])
