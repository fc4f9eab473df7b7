"""Shared fixtures: an isolated SKILLC_HOME, the CLI runner, spec builders."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from compiler.cli import cli
from compiler.home import Home, default_root

REPO = Path(__file__).resolve().parent.parent
SPECS = REPO / "specs"
HOSTAPP = REPO / "examples" / "hostapp"
FIXTURES = Path(__file__).resolve().parent / "fixtures"
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


@pytest.fixture(autouse=True)
def skillc_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets its own SKILLC_HOME; built sandbox images stay shared."""
    if "SKILLC_IMAGES" not in os.environ:
        monkeypatch.setenv("SKILLC_IMAGES", str(Home(default_root()).images))
    home = tmp_path / "skillc-home"
    monkeypatch.setenv("SKILLC_HOME", str(home))
    return home


Invoke = Callable[..., Result]


@pytest.fixture
def invoke() -> Invoke:
    """Run the CLI in-process; stdout and stderr are kept apart."""
    runner = CliRunner()

    def run(*args: str, input: str | None = None) -> Result:
        return runner.invoke(cli, [str(a) for a in args], input=input, catch_exceptions=False)

    return run


@pytest.fixture
def fork(tmp_path: Path) -> Path:
    """A fresh copy of the example host."""
    dst = tmp_path / "fork"
    shutil.copytree(HOSTAPP, dst, ignore=shutil.ignore_patterns("__pycache__"))
    return dst


def write_spec(root: Path, name: str, front: str, body: str = "\n# Steps\n\nDo it.\n",
               files: dict[str, str] | None = None) -> Path:
    """Create a spec folder ``root/name`` from front matter text, body and extra files."""
    folder = root / name
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "SKILL.md").write_text(f"---\n{front.strip()}\n---\n{body}")
    for rel, text in (files or {}).items():
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        (folder / rel).write_text(text)
    return folder


def require(condition: bool, reason: str) -> None:
    """Skip when a machine facility is missing — but fail in CI, where it must exist."""
    if condition:
        return
    if IN_CI:
        pytest.fail(f"required in CI: {reason}")
    pytest.skip(reason)
