"""A wheel built from the repo carries the templates and schemas and runs `skillc lint`."""

from __future__ import annotations

import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

from tests.conftest import REPO, SPECS


@pytest.mark.slow
def test_wheel_installs_and_lints(tmp_path: Path) -> None:
    dist = tmp_path / "dist"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                    "-q", "-w", str(dist), str(REPO)], check=True, timeout=300)
    wheel = next(dist.glob("skillc-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    assert "compiler/schemas/spec.schema.json" in names
    templates = {p.name for p in (REPO / "templates").iterdir()}
    assert {n.split("/")[-1] for n in names if n.startswith("compiler/templates/")} == templates
    assert any(n.startswith("registry/") for n in names)
    assert not any(n.startswith(("tests/", "specs/", "examples/")) for n in names)

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    py = venv / "bin" / "python"
    subprocess.run([str(py), "-m", "pip", "install", "-q", "--no-deps", str(wheel)], check=True,
                   timeout=300)
    # Dependencies come from this environment's site-packages (not its editable skillc).
    site = subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                          capture_output=True, text=True, check=True).stdout.strip()
    (Path(site) / "deps.pth").write_text(sysconfig.get_path("purelib") + "\n")

    where = subprocess.run([str(py), "-c", "import compiler.resources as r; "
                            "print(r.__file__); print(r.templates_dir())"],
                           cwd=tmp_path, capture_output=True, text=True, check=True).stdout.split()
    assert all(w.startswith(str(venv)) for w in where), where
    specs = sorted(str(p) for p in SPECS.iterdir())
    proc = subprocess.run([str(venv / "bin" / "skillc"), "lint", *specs], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert f"{len(specs)} spec(s): 0 error(s), 0 warning(s)" in proc.stderr
