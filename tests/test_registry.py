"""The local registry through the CLI: publish, versions, yank, search, show, fork, verify, gc."""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path

import pytest

from compiler.catalog import open_local
from compiler.errors import CorruptionError
from registry.migrations import MIGRATIONS
from tests.conftest import SPECS, Invoke


def copy_spec(tmp_path: Path, name: str = "add-webhook") -> Path:
    return shutil.copytree(SPECS / name, tmp_path / "work" / name)


def bump(folder: Path, version: str, extra: str = "") -> None:
    skill = folder / "SKILL.md"
    text = skill.read_text()
    old = next(line for line in text.splitlines() if line.startswith("version:"))
    skill.write_text(text.replace(old, f"version: {version}", 1) + extra)


def test_publish_versions_and_immutability(tmp_path: Path, invoke: Invoke) -> None:
    folder = copy_spec(tmp_path)
    first = invoke("publish", folder, "--json")
    assert first.exit_code == 0 and json.loads(first.stdout)["new"] is True
    again = invoke("publish", folder)
    assert again.exit_code == 0 and again.stdout.startswith("already published add-webhook@1.0.0")
    (folder / "SKILL.md").write_text((folder / "SKILL.md").read_text() + "\nMore words.\n")
    changed = invoke("publish", folder)
    assert changed.exit_code == 1
    assert "add-webhook@1.0.0 is already published with other content" in changed.stderr
    assert "bump the version" in changed.stderr
    bump(folder, "1.1.0")
    assert invoke("publish", folder).exit_code == 0
    rows = json.loads(invoke("versions", "add-webhook", "--json").stdout)
    assert [r["version"] for r in rows] == ["1.0.0", "1.1.0"]


def test_publish_refuses_lint_errors_and_missing_version(tmp_path: Path, invoke: Invoke) -> None:
    folder = copy_spec(tmp_path)
    text = (folder / "SKILL.md").read_text()
    (folder / "SKILL.md").write_text(text.replace("version: 1.0.0\n", ""))
    result = invoke("publish", folder)
    assert result.exit_code == 1 and "cannot publish without a version" in result.stderr
    (folder / "SKILL.md").write_text(text.replace("name: add-webhook", "name: Add_Webhook"))
    result = invoke("publish", folder)
    assert result.exit_code == 1 and "SKILL.md:2: error: name:" in result.stderr


def test_yank_hides_from_resolution(tmp_path: Path, invoke: Invoke) -> None:
    folder = copy_spec(tmp_path)
    invoke("publish", folder)
    bump(folder, "1.1.0")
    invoke("publish", folder)
    assert json.loads(invoke("show", "add-webhook", "--json").stdout)["version"] == "1.1.0"
    assert invoke("yank", "add-webhook@1.1.0").exit_code == 0
    assert json.loads(invoke("show", "add-webhook", "--json").stdout)["version"] == "1.0.0"
    assert json.loads(invoke("show", "add-webhook@1.1.0", "--json").stdout)["yanked"] is True
    assert "1.1.0" in invoke("versions", "add-webhook").stdout
    assert "(yanked)" in invoke("versions", "add-webhook").stdout
    invoke("yank", "add-webhook@1.1.0", "--undo")
    assert json.loads(invoke("show", "add-webhook", "--json").stdout)["version"] == "1.1.0"
    assert invoke("yank", "add-webhook@9.9.9").exit_code == 1


def test_search(tmp_path: Path, invoke: Invoke) -> None:
    for name in ("add-webhook", "add-telegram", "add-scheduler", "add-sqlite-memory"):
        invoke("publish", copy_spec(tmp_path, name))
    names = [r["name"] for r in json.loads(invoke("search", "telegram", "--json").stdout)]
    assert names == ["add-telegram"]
    names = [r["name"] for r in json.loads(invoke("search", "cron", "--json").stdout)]
    assert names == ["add-scheduler"]
    assert json.loads(invoke("search", "HMAC signature", "--json").stdout)[0]["name"] == "add-webhook"
    assert json.loads(invoke("search", 'kubernetes "', "--json").stdout) == []


def test_fork_records_lineage(tmp_path: Path, invoke: Invoke) -> None:
    invoke("publish", copy_spec(tmp_path))
    result = invoke("fork", "add-webhook@1.0.0", "acme-webhook", "--to", tmp_path / "mine")
    assert result.exit_code == 0, result.stderr
    forked = tmp_path / "mine" / "acme-webhook"
    assert invoke("lint", forked).stdout == ""
    shown = json.loads(invoke("show", forked, "--json").stdout)
    assert shown["name"] == "acme-webhook"
    parent_digest = json.loads(invoke("show", "add-webhook", "--json").stdout)["digest"]
    assert shown["front_matter"]["forked_from"] == {"name": "add-webhook", "version": "1.0.0",
                                                    "digest": parent_digest}
    assert shown["front_matter"]["requires"] == {"env": ["WEBHOOK_SECRET"]}
    invoke("publish", forked)
    invoke("fork", "acme-webhook", "acme-webhook-eu", "--to", tmp_path / "mine")
    invoke("publish", tmp_path / "mine" / "acme-webhook-eu")
    lineage = json.loads(invoke("show", "acme-webhook-eu", "--json").stdout)["lineage"]
    assert [(x["name"], x["version"]) for x in lineage] == [("acme-webhook", "1.0.0"),
                                                           ("add-webhook", "1.0.0")]
    human = invoke("show", "acme-webhook-eu").stdout
    assert "forked from" in human and "add-webhook" in human
    assert invoke("fork", "add-webhook", "acme-webhook", "--to", tmp_path / "mine").exit_code == 1


def test_verify_finds_a_flipped_byte_and_reads_refuse_it(tmp_path: Path, invoke: Invoke) -> None:
    invoke("publish", copy_spec(tmp_path))
    assert invoke("registry", "verify").exit_code == 0
    reg = open_local()
    row = reg.index.spec("add-webhook", "1.0.0")
    entry = reg.store.tree(row.digest).by_path()["SKILL.md"]
    path = reg.store.path(entry.digest)
    path.chmod(0o644)
    data = bytearray(path.read_bytes())
    data[10] ^= 0x01
    path.write_bytes(bytes(data))
    result = invoke("registry", "verify", "--json")
    assert result.exit_code == 1
    problems = json.loads(result.stdout)["problems"]
    assert problems[0].startswith(f"{path}: object {entry.digest} is corrupt: its content hashes to")
    assert f"spec add-webhook@1.0.0 SKILL.md: refers to corrupt object {entry.digest}" in problems
    with pytest.raises(CorruptionError):
        reg.store.get(entry.digest)
    shown = invoke("show", "add-webhook")
    assert shown.exit_code == 1 and "is corrupt" in shown.stderr


def test_verify_reports_missing_objects(tmp_path: Path, invoke: Invoke) -> None:
    invoke("publish", copy_spec(tmp_path))
    reg = open_local()
    row = reg.index.spec("add-webhook", "1.0.0")
    entry = reg.store.tree(row.digest).by_path()["tests/test_webhook.py"]
    reg.store.delete(entry.digest)
    problems = json.loads(invoke("registry", "verify", "--json").stdout)["problems"]
    assert problems == [f"spec add-webhook@1.0.0 tests/test_webhook.py: missing object "
                        f"{entry.digest}"]


def test_gc_keeps_what_is_referenced(tmp_path: Path, invoke: Invoke) -> None:
    invoke("publish", copy_spec(tmp_path))
    reg = open_local()
    orphan = reg.store.put(b"nobody refers to me")
    assert json.loads(invoke("registry", "gc", "--json").stdout)["removed"] == 0  # grace period
    result = json.loads(invoke("registry", "gc", "--grace", "0", "--json").stdout)
    assert result == {"removed": 1, "bytes": len(b"nobody refers to me")}
    assert not reg.store.has(orphan)
    assert invoke("registry", "verify").exit_code == 0
    assert invoke("show", "add-webhook").exit_code == 0


def test_index_migrations_are_numbered_and_recorded(skillc_home: Path) -> None:
    reg = open_local()
    assert reg.index.schema_version == len(MIGRATIONS)
    db = sqlite3.connect(skillc_home / "index.sqlite3")
    versions = [r[0] for r in db.execute("SELECT version FROM schema_migrations ORDER BY version")]
    assert versions == list(range(1, len(MIGRATIONS) + 1))
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    reg.close()
    open_local().close()  # re-opening applies nothing twice
    assert [r[0] for r in db.execute("SELECT count(*) FROM schema_migrations")] == [len(MIGRATIONS)]


def test_objects_are_read_only_and_content_addressed(tmp_path: Path) -> None:
    reg = open_local()
    digest = reg.store.put(b"hello")
    assert digest == "sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
    assert reg.store.path(digest).stat().st_mode & 0o777 == 0o444
    assert reg.store.put(b"hello") == digest
    assert list((reg.store.root / "tmp").iterdir()) == []
