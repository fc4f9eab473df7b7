"""Install, status, regenerate and uninstall on copies of examples/hostapp, with the reference
agent in bwrap: customizations survive upgrades, conflicts stop cleanly, nothing is lost."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.conftest import HOSTAPP, SPECS, Invoke, write_spec
from tests.sandboxes import config_for
from tests.test_registry import bump

WEBHOOK = "hostapp/channels/webhook.py"


class Env:
    """A registry with the example specs published, and deployments of fresh forks."""

    def __init__(self, root: Path, invoke: Invoke) -> None:
        self.root, self.invoke = root, invoke
        self.specs = root / "specs"
        for name in ("add-webhook", "add-scheduler", "add-telegram"):
            shutil.copytree(SPECS / name, self.specs / name)
            assert invoke("publish", self.specs / name).exit_code == 0

    def deployment(self, name: str = "acme", extra: str = "") -> tuple[Path, Path]:
        fork = shutil.copytree(HOSTAPP, self.root / name, ignore=shutil.ignore_patterns("__pycache__"))
        dep = self.root / f"{name}.toml"
        dep.write_text(f'name = "{name}"\ntarget = "{fork}"\n[sandbox]\nbackend = "bwrap"\n'
                       f'[agent]\nbackend = "reference"\n{extra}')
        return fork, dep

    def run(self, *args: object, code: int = 0) -> str:
        result = self.invoke(*args)
        assert result.exit_code == code, result.output
        return result.stdout

    def status(self, dep: Path) -> dict[str, dict[str, object]]:
        return {s["name"]: s for s in json.loads(self.run("status", "-d", dep, "--json"))}

    def release_webhook(self, version: str = "1.1.0") -> None:
        """A new version: a changed line in webhook.py, a new key, a new file."""
        folder = self.specs / "add-webhook"
        bump(folder, version)
        skill = folder / "SKILL.md"
        skill.write_text(skill.read_text().replace(
            "    - hostapp.toml\n", "    - hostapp.toml\n    - hostapp/channels/webhook_README.md\n"))
        ref = folder / "reference" / "hostapp" / "channels" / "webhook.py.j2"
        ref.write_text(ref.read_text().replace(
            'SIGNATURE_HEADER = "X-Hub-Signature-256"',
            'SIGNATURE_HEADER = "X-Hub-Signature-256"  # GitHub-compatible'))
        toml = folder / "reference" / "hostapp.toml.j2"
        toml.write_text(toml.read_text().replace('secret_env = "WEBHOOK_SECRET"\n',
                                                 'secret_env = "WEBHOOK_SECRET"\nlog = false\n'))
        (folder / "reference" / "hostapp" / "channels" / "webhook_README.md").write_text(
            "The webhook channel signs requests with HMAC-SHA256.\n")
        assert self.invoke("publish", folder).exit_code == 0


@pytest.fixture
def env(tmp_path: Path, invoke: Invoke) -> Env:
    config_for("bwrap")
    return Env(tmp_path, invoke)


def lock_of(fork: Path) -> dict:  # type: ignore[type-arg]
    return json.loads((fork / "skillc.lock").read_text())  # type: ignore[no-any-return]


def test_install_applies_and_records(env: Env) -> None:
    fork, dep = env.deployment()
    out = env.run("install", "add-webhook", "-d", dep)
    assert "acme: add-webhook: installed 1.0.0" in out
    assert (fork / WEBHOOK).exists()
    assert "# >>> add-webhook" in (fork / "hostapp.toml").read_text()
    record = lock_of(fork)["skills"]["add-webhook"]
    assert record["version"] == "1.0.0" and record["range"] == "*"
    assert set(record["files"]) == {WEBHOOK, "hostapp.toml"}
    assert record["files"][WEBHOOK]["status"] == "added"
    assert record["files"]["hostapp.toml"]["status"] == "modified"
    status = env.status(dep)["add-webhook"]
    assert status["stale"] == [] and status["customized"] == {}
    again = env.run("install", "add-webhook", "-d", dep)
    assert "already installed" in again


def test_customization_survives_an_upgrade(env: Env) -> None:
    fork, dep = env.deployment()
    env.run("install", "add-webhook@^1", "-d", dep)
    webhook = fork / WEBHOOK
    webhook.write_text(webhook.read_text().replace('    name = "webhook"',
                                                   '    name = "webhook"\n    team = "acme"'))
    assert env.status(dep)["add-webhook"]["customized"] == {WEBHOOK: "modified"}
    env.release_webhook()
    plan = env.run("regenerate", "-d", dep, "--plan")
    assert "would rebuild: newer version 1.1.0 matches ^1" in plan
    assert lock_of(fork)["skills"]["add-webhook"]["version"] == "1.0.0"
    env.run("regenerate", "-d", dep)
    text = webhook.read_text()
    assert 'team = "acme"' in text and "# GitHub-compatible" in text
    assert "log = false" in (fork / "hostapp.toml").read_text()
    assert (fork / "hostapp/channels/webhook_README.md").exists()
    assert lock_of(fork)["skills"]["add-webhook"]["version"] == "1.1.0"
    before = {p: p.read_bytes() for p in fork.rglob("*") if p.is_file()}
    second = json.loads(env.run("regenerate", "-d", dep, "--json"))[0]
    assert second["skills"] == {"add-webhook": "up to date"} and second["changes"] == []
    assert {p: p.read_bytes() for p in fork.rglob("*") if p.is_file()} == before


def test_editing_the_same_lines_conflicts(env: Env) -> None:
    fork, dep = env.deployment()
    env.run("install", "add-webhook", "-d", dep)
    lock_before = lock_of(fork)["skills"]["add-webhook"]
    webhook = fork / WEBHOOK
    webhook.write_text(webhook.read_text().replace('SIGNATURE_HEADER = "X-Hub-Signature-256"',
                                                   'SIGNATURE_HEADER = "X-Acme-Signature"'))
    env.release_webhook()
    result = env.invoke("regenerate", "-d", dep)
    assert result.exit_code == 1
    assert "conflicts in hostapp/channels/webhook.py" in result.stderr
    text = webhook.read_text()
    assert "<<<<<<< yours" in text and ">>>>>>> new build" in text
    assert 'SIGNATURE_HEADER = "X-Acme-Signature"' in text
    assert lock_of(fork)["skills"]["add-webhook"] == lock_before
    refused = env.invoke("regenerate", "-d", dep)
    assert refused.exit_code == 1 and "resolve the conflict markers" in refused.stdout
    assert env.status(dep)["add-webhook"]["conflicts"] == [WEBHOOK]
    webhook.write_text("\n".join(line for line in text.split("\n")
                                 if not line.startswith(("<<<<<<<", "=======", ">>>>>>>"))
                                 and "X-Acme" not in line))
    assert env.status(dep)["add-webhook"]["version"] == "1.1.0"
    assert env.run("regenerate", "-d", dep).count("up to date") == 1


def test_deleted_files_stay_deleted_and_new_files_arrive(env: Env) -> None:
    fork, dep = env.deployment()
    env.run("install", "add-webhook", "-d", dep)
    (fork / WEBHOOK).unlink()
    assert env.status(dep)["add-webhook"]["customized"] == {WEBHOOK: "deleted"}
    env.release_webhook()
    env.run("regenerate", "-d", dep)
    assert not (fork / WEBHOOK).exists()
    assert (fork / "hostapp/channels/webhook_README.md").exists()
    assert env.run("regenerate", "-d", dep).count("up to date") == 1


def test_two_skills_share_a_file_and_uninstall_one(env: Env) -> None:
    fork, dep = env.deployment()
    original = (fork / "hostapp.toml").read_text()
    env.run("install", "add-webhook", "-d", dep)
    env.run("install", "add-scheduler", "-d", dep)
    toml = (fork / "hostapp.toml").read_text()
    assert "# >>> add-webhook" in toml and "# >>> add-scheduler" in toml
    for status in env.status(dep).values():
        assert status["stale"] == [] and status["customized"] == {}
    out = env.run("uninstall", "add-webhook", "-d", dep)
    assert "acme: add-webhook: uninstalled" in out
    toml = (fork / "hostapp.toml").read_text()
    assert "add-webhook" not in toml and "# >>> add-scheduler" in toml
    assert toml.startswith(original)
    assert not (fork / WEBHOOK).exists()
    assert set(lock_of(fork)["skills"]) == {"add-scheduler"}
    assert env.status(dep)["add-scheduler"]["customized"] == {}
    env.run("uninstall", "add-scheduler", "-d", dep)
    assert (fork / "hostapp.toml").read_text() == original
    assert not (fork / "hostapp/channels/scheduler.py").exists()


def test_uninstall_keeps_customized_files_unless_forced(env: Env) -> None:
    fork, dep = env.deployment()
    env.run("install", "add-webhook", "-d", dep)
    (fork / WEBHOOK).write_text((fork / WEBHOOK).read_text() + "# mine\n")
    out = env.run("uninstall", "add-webhook", "-d", dep)
    assert "kept customized hostapp/channels/webhook.py" in out
    assert (fork / WEBHOOK).exists() and lock_of(fork)["skills"] == {}
    fork, dep = env.deployment("other")
    env.run("install", "add-webhook", "-d", dep)
    (fork / WEBHOOK).write_text("# all mine\n")
    env.run("uninstall", "add-webhook", "-d", dep, "--force")
    assert not (fork / WEBHOOK).exists()
    assert (fork / "hostapp.toml").read_text() == (HOSTAPP / "hostapp.toml").read_text()


def test_dependencies_cycles_and_missing_skills(env: Env) -> None:
    _, dep = env.deployment()
    env.run("publish", _spec(env, "add-relay", "add-webhook: ^1.0"))
    out = env.run("install", "add-relay", "-d", dep)
    assert out.index("add-webhook: installed") < out.index("add-relay: installed")
    refused = env.invoke("uninstall", "add-webhook", "-d", dep)
    assert refused.exit_code == 1
    assert "cannot uninstall add-webhook: add-relay require(s) it" in refused.stderr
    env.run("publish", _spec(env, "loop-a", "loop-b: '*'"))
    env.run("publish", _spec(env, "loop-b", "loop-a: '*'"))
    cycle = env.invoke("install", "loop-a", "-d", dep)
    assert cycle.exit_code == 1 and "requires.skills has a cycle: loop-a → loop-b → loop-a" in \
        cycle.stderr
    env.run("publish", _spec(env, "orphan", "nowhere: '^1'"))
    missing = env.invoke("install", "orphan", "-d", dep)
    assert "no spec named 'nowhere' is published here (try `skillc search`) (required by orphan)" \
        in missing.stderr


def _spec(env: Env, name: str, requires: str) -> Path:
    module = f"hostapp/tools/{name.replace('-', '_')}.py"
    front = (f"name: {name}\ndescription: test skill\nversion: 1.0.0\nrequires:\n  skills:\n"
             f"    {requires}\npermissions:\n  paths: [{module}]")
    return write_spec(env.root / "extra", name, front,
                      files={f"reference/{module}": f'"""The {name} tool."""\n'})


def test_status_explains_staleness(env: Env) -> None:
    fork, dep = env.deployment()
    broad = shutil.copytree(env.specs / "add-scheduler", env.root / "broad" / "add-scheduler")
    skill = broad / "SKILL.md"
    skill.write_text(skill.read_text().replace("    - hostapp/channels/scheduler.py",
                                               "    - hostapp/channels/**"))
    bump(broad, "1.0.1")
    env.run("publish", broad)
    env.run("install", "add-scheduler@1.0.1", "-d", dep)
    assert env.status(dep)["add-scheduler"]["stale"] == []
    (fork / "hostapp/channels/console.py").write_text("# changed underneath\n")
    assert env.status(dep)["add-scheduler"]["stale"] == ["fork files it builds on changed"]
    dep.write_text(dep.read_text() + '[inputs.add-scheduler]\ntimezone = "local"\n')
    assert env.status(dep)["add-scheduler"]["stale"] == ["inputs changed",
                                                         "fork files it builds on changed"]
    env.run("regenerate", "-d", dep)
    assert env.status(dep)["add-scheduler"]["stale"] == []
    assert 'timezone = "local"' in (fork / "hostapp.toml").read_text()


def test_many_deployments_in_parallel(env: Env) -> None:
    deps = []
    for i in range(3):
        fork, dep = env.deployment(f"site-{i}", f'[inputs.add-webhook]\nport = {8100 + i}\n')
        env.run("install", "add-webhook", "-d", dep)
        deps.append((fork, dep))
    env.release_webhook()
    args = [a for _, dep in deps for a in ("-d", dep)]
    summary = env.run("regenerate", *args, "-j", "3")
    for i in range(3):
        assert f"site-{i}" in summary
    assert summary.count("regenerated 1.1.0") == 3
    for i, (fork, _) in enumerate(deps):
        assert f"port = {8100 + i}" in (fork / "hostapp.toml").read_text()
        assert "# GitHub-compatible" in (fork / WEBHOOK).read_text()
    results = json.loads(env.run("regenerate", *args, "-j", "3", "--json"))
    assert [r["skills"] for r in results] == [{"add-webhook": "up to date"}] * 3
