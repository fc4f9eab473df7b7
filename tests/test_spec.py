"""The spec parser: front matter, sections, code blocks, tree digests, limits."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from compiler import spec as specmod
from compiler.errors import NotFoundError, SpecError
from tests.conftest import FIXTURES, SPECS, write_spec


def test_parses_an_example_spec() -> None:
    spec = specmod.load(SPECS / "add-webhook")
    assert spec.name == "add-webhook"
    assert spec.version == "1.0.0"
    assert spec.requires_env == ("WEBHOOK_SECRET",)
    assert spec.paths == ("hostapp/channels/webhook.py", "hostapp.toml")
    titles = [s.title for s in spec.doc.sections]
    assert titles[:2] == ["Goal", "Where it goes in the fork"]
    lines = (SPECS / "add-webhook" / "SKILL.md").read_text().splitlines()
    for section in spec.doc.sections:
        assert lines[section.line - 1] == f"{'#' * section.level} {section.title}"
    assert lines[spec.line_of(("requires", "env")) - 1] == "  env: [WEBHOOK_SECRET]"
    assert spec.digest.startswith("sha256:")
    assert {e.path for e in spec.tree.entries} >= {"SKILL.md", "tests/test_webhook.py"}


def test_code_blocks_keep_info_and_line() -> None:
    spec = specmod.load(FIXTURES / "specs" / "pdf-tools")
    assert [(b.info, b.line) for b in spec.doc.code_blocks] == [("bash", 12), ("python", 23)]
    assert "PdfWriter" in spec.doc.code_blocks[1].text


def test_digest_is_content_identity(tmp_path: Path) -> None:
    a = shutil.copytree(SPECS / "add-scheduler", tmp_path / "a" / "add-scheduler")
    b = shutil.copytree(SPECS / "add-scheduler", tmp_path / "b" / "add-scheduler")
    assert specmod.load(a).digest == specmod.load(b).digest
    (b / "tests" / "test_scheduler.py").write_text("# changed\n")
    assert specmod.load(a).digest != specmod.load(b).digest
    os.chmod(a / "SKILL.md", 0o755)
    assert specmod.load(a).digest != specmod.load(SPECS / "add-scheduler").digest


def test_crlf_is_accepted_with_the_same_lines() -> None:
    spec = specmod.load(FIXTURES / "specs" / "crlf-line-ends")
    assert spec.description == "Windows line ends are fine."
    assert [(s.title, s.line) for s in spec.doc.sections] == [("Steps", 6)]


def test_dates_stay_strings(tmp_path: Path) -> None:
    folder = write_spec(tmp_path, "dated", "name: dated\ndescription: d\nmetadata:\n  since: 2024-01-01")
    assert specmod.load(folder).meta["metadata"]["since"] == "2024-01-01"


def test_missing_folder_and_file(tmp_path: Path) -> None:
    with pytest.raises(NotFoundError, match="not a folder"):
        specmod.load(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(NotFoundError, match=r"no SKILL\.md in this folder"):
        specmod.load(tmp_path / "empty")


def _problems(root: Path) -> list[str]:
    with pytest.raises(SpecError) as caught:
        specmod.load(root)
    return [str(p) for p in caught.value.problems]


def test_huge_skill_md_is_refused(tmp_path: Path) -> None:
    folder = write_spec(tmp_path, "huge", "name: huge\ndescription: d", "x" * (1024 * 1024 + 1))
    size = (folder / "SKILL.md").stat().st_size
    assert _problems(folder) == [
        f"{folder}/SKILL.md: error: {size} bytes; SKILL.md may be at most 1 MiB"]


def test_huge_folder_is_refused(tmp_path: Path) -> None:
    folder = write_spec(tmp_path, "big", "name: big\ndescription: d")
    for i in range(3):
        (folder / f"blob{i}.bin").write_bytes(b"\0" * (3 * 1024 * 1024))
    assert _problems(folder) == [f"{folder}: error: more than 8388608 bytes in all"]


def test_symlink_leaving_the_folder_is_refused(tmp_path: Path) -> None:
    folder = write_spec(tmp_path, "linky", "name: linky\ndescription: d")
    (folder / "references").mkdir()
    (folder / "references" / "secret").symlink_to("/etc/passwd")
    assert _problems(folder) == [
        f"{folder}/references/secret: error: symlink points outside the tree (/etc/passwd)"]
    (folder / "references" / "secret").unlink()
    (folder / "references" / "up").symlink_to("../../elsewhere")
    assert "symlink points outside the tree (../../elsewhere)" in _problems(folder)[0]


def test_symlink_inside_the_folder_is_kept(tmp_path: Path) -> None:
    folder = write_spec(tmp_path, "linky", "name: linky\ndescription: d")
    (folder / "alias.md").symlink_to("SKILL.md")
    entry = specmod.load(folder).tree.by_path()["alias.md"]
    assert entry.type == "symlink"


def test_skill_md_must_be_a_regular_file(tmp_path: Path) -> None:
    real = write_spec(tmp_path, "real", "name: real\ndescription: d")
    (tmp_path / "link").mkdir()
    (tmp_path / "link" / "SKILL.md").symlink_to(real / "SKILL.md")
    assert _problems(tmp_path / "link") == [
        f"{tmp_path}/link/SKILL.md: error: SKILL.md must be a regular file, not a symlink or device"]


def test_device_files_are_refused(tmp_path: Path) -> None:
    folder = write_spec(tmp_path, "fifo", "name: fifo\ndescription: d")
    os.mkfifo(folder / "pipe")
    assert _problems(folder) == [
        f"{folder}/pipe: error: not a regular file, folder or symlink (device, fifo or socket)"]


def test_deeply_nested_yaml_is_an_error(tmp_path: Path) -> None:
    folder = write_spec(tmp_path, "deep", "name: deep\ndescription: d\nx: " + "[" * 5000)
    assert _problems(folder) == [f"{folder}/SKILL.md:2: error: front matter is nested too deeply"]


def test_non_string_keys_and_binary_values(tmp_path: Path) -> None:
    folder = write_spec(tmp_path, "keys", "name: keys\ndescription: d\n1: one")
    assert _problems(folder) == [f"{folder}/SKILL.md:4: error: keys must be plain strings"]
    folder = write_spec(tmp_path, "bin", "name: bin\ndescription: d\nblob: !!binary aGk=")
    assert _problems(folder) == [f"{folder}/SKILL.md:4: error: blob: bytes values are not allowed"]
