"""The build pipeline: reference builds on every backend, the cache, replay, and failures
that name the check."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from compiler.build import Builder
from compiler.catalog import open_local
from compiler.deployment import load as load_deployment
from compiler.deployment import with_overrides
from compiler.errors import BuildFailed
from compiler.spec import load
from tests.conftest import SPECS, Invoke, write_spec
from tests.sandboxes import config_for
from tests.scripted_agent import ScriptedAgent, sh, submit, write

SPEC_NAMES = sorted(p.name for p in SPECS.iterdir())


def make_deployment(tmp_path: Path, fork: Path, backend: str = "bwrap", name: str = "dev",
                    extra: str = "") -> Path:
    path = tmp_path / f"{name}.toml"
    path.write_text(f'name = "{name}"\ntarget = "{fork}"\n[sandbox]\nbackend = "{backend}"\n'
                    f'[agent]\nbackend = "reference"\n{extra}')
    return path


@pytest.mark.parametrize("backend", ["bwrap", "docker"])
@pytest.mark.parametrize("name", SPEC_NAMES)
def test_every_example_spec_builds_and_validates(name: str, backend: str, tmp_path: Path,
                                                 fork: Path, invoke: Invoke) -> None:
    config_for(backend)
    out_dir = tmp_path / "out"
    result = invoke("build", SPECS / name, "-d", make_deployment(tmp_path, fork, backend),
                    "--output", out_dir, "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["status"] == "passed" and data["cached"] is False
    checks = {c["name"]: c for c in data["report"]["checks"]}
    assert [checks[c]["status"] for c in ("schema", "policy", "acceptance")] == ["passed"] * 3
    assert checks["acceptance"]["detail"]["tests_run"] >= 5
    assert checks["acceptance"]["detail"]["failures"] == 0
    assert (out_dir / "hostapp.toml").read_text() != (fork / "hostapp.toml").read_text()
    assert not (out_dir / ".skillc").exists()
    manifest = json.loads(invoke("audit", data["build_id"], "--json").stdout)["manifest"]
    assert manifest["provenance"]["sandbox"]["backend"] == backend
    assert manifest["provenance"]["output_tree"] == data["output_tree"]


@pytest.mark.microvm
@pytest.mark.slow
def test_build_in_a_microvm(tmp_path: Path, fork: Path, invoke: Invoke) -> None:
    config_for("microvm")
    result = invoke("build", SPECS / "add-webhook", "-d", make_deployment(tmp_path, fork),
                    "--sandbox", "microvm", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    acceptance = next(c for c in data["report"]["checks"] if c["name"] == "acceptance")
    assert acceptance["status"] == "passed" and acceptance["detail"]["tests_run"] == 9
    sandbox = json.loads(invoke("audit", data["build_id"], "--json").stdout)["build"]["sandbox"]
    assert sandbox["backend"] == "microvm" and sandbox["runtime"] in ("kvm", "tcg")
    assert sandbox["image_digest"].startswith("sha256:") and sandbox["kernel"].startswith("sha256:")


def test_cache_hits_and_misses(tmp_path: Path, fork: Path, invoke: Invoke) -> None:
    dep = make_deployment(tmp_path, fork)
    spec = SPECS / "add-webhook"

    def build(*extra: object) -> dict[str, object]:
        result = invoke("build", spec, "-d", dep, "--json", *extra)
        assert result.exit_code == 0, result.output
        return json.loads(result.stdout)  # type: ignore[no-any-return]

    first = build()
    again = build()
    assert again["cached"] is True and again["build_id"] == first["build_id"]
    assert again["key"] == first["key"]
    forced = build("--no-cache")
    assert forced["cached"] is False and forced["build_id"] != first["build_id"]
    assert forced["key"] == first["key"]
    (fork / "README.md").write_text("outside the skill's paths\n")
    assert build()["cached"] is True
    (fork / "hostapp.toml").write_text((fork / "hostapp.toml").read_text() + "# edited\n")
    assert build()["cached"] is False
    dep.write_text(dep.read_text() + "[inputs.add-webhook]\nport = 9000\n")
    changed = build()
    assert changed["cached"] is False and changed["key"] != first["key"]


def test_replay_reproduces_a_reference_build(tmp_path: Path, fork: Path, invoke: Invoke) -> None:
    dep = make_deployment(tmp_path, fork)
    original = json.loads(invoke("build", SPECS / "add-scheduler", "-d", dep, "--json").stdout)
    result = invoke("build", SPECS / "add-scheduler", "-d", dep, "--replay", original["build_id"],
                    "--json")
    assert result.exit_code == 0, result.output
    replayed = json.loads(result.stdout)
    assert replayed["agent"] == "replay" and replayed["differences"] == []
    assert replayed["divergences"] == []
    assert replayed["output_tree"] == original["output_tree"]
    text = invoke("build", SPECS / "add-scheduler", "-d", dep, "--replay", original["build_id"])
    assert "replay reproduced the original build file for file" in text.stdout


def _builder_with(steps: list) -> Builder:  # type: ignore[type-arg]
    return Builder(open_local(), agent_factory=lambda dep: ScriptedAgent(steps))


def _fail(tmp_path: Path, fork: Path, steps: list, spec: Path = SPECS / "add-webhook"  # type: ignore[type-arg]
          ) -> tuple[str, dict]:  # type: ignore[type-arg]
    dep = load_deployment(make_deployment(tmp_path, fork))
    with pytest.raises(BuildFailed) as caught:
        _builder_with(steps).build(load(spec), dep)
    reg = open_local()
    row = reg.index.build(caught.value.build_id or "")
    assert row.status == "failed"
    return str(caught.value), reg.store.get_json(row.report) if row.report else {}


def test_schema_failure_names_the_check(tmp_path: Path, fork: Path) -> None:
    message, report = _fail(tmp_path, fork, [submit(summary="x", env=["bad-name"])])
    assert "schema: env/0: 'bad-name' does not match" in message
    assert [c["status"] for c in report["checks"]] == ["failed", "failed", "failed"]


def test_policy_failures_name_the_file(tmp_path: Path, fork: Path) -> None:
    (fork / ".github" / "workflows").mkdir(parents=True)
    (fork / ".github/workflows/ci.yml").write_text("on: push\n")
    steps = [write("AGENTS.md", "obey me"), write(".github/workflows/ci.yml", "on: pull\n"),
             write("hostapp/core.py", "# replaced\n"), write("requirements.txt", "requests\n"),
             submit(env=["WEBHOOK_SECRET", "AWS_SECRET_ACCESS_KEY"], hosts=["evil.example.com"])]
    message, report = _fail(tmp_path, fork, steps)
    policy = next(c for c in report["checks"] if c["name"] == "policy")
    assert policy["errors"] == [
        ".github/workflows/ci.yml: a protected file (CI, agent instructions, VCS, lock); the spec "
        "does not allow changing it (permissions.protected)",
        "AGENTS.md: a protected file (CI, agent instructions, VCS, lock); the spec does not allow "
        "changing it (permissions.protected)",
        "hostapp/core.py: changed, but outside permissions.paths (hostapp/channels/webhook.py, "
        "hostapp.toml)",
        "requirements.txt: changed, but outside permissions.paths (hostapp/channels/webhook.py, "
        "hostapp.toml)",
        "env AWS_SECRET_ACCESS_KEY: used by the integration but not in requires.env",
        "host evil.example.com: reached by the integration but not in permissions.network",
        "requirements.txt: dependency files changed but the manifest declares no dependencies"]
    assert "policy:" in message


def test_acceptance_failure_and_tests_copied_last(tmp_path: Path, fork: Path) -> None:
    steps = [write("hostapp/channels/webhook.py", "def create(config, env):\n    return None\n"),
             write(".skillc/tests/test_webhook.py", "# weakened by the agent\n"),
             submit(env=["WEBHOOK_SECRET"])]
    message, report = _fail(tmp_path, fork, steps)
    acceptance = next(c for c in report["checks"] if c["name"] == "acceptance")
    assert acceptance["status"] == "failed"
    assert acceptance["detail"]["tests_run"] == 9 and acceptance["detail"]["errors"] >= 1
    assert "acceptance: `python3 -m unittest discover -s .skillc/tests -v` exit code 1" in message


def test_escaping_symlink_in_output_fails_policy(tmp_path: Path, fork: Path) -> None:
    message, _ = _fail(tmp_path, fork, [sh("ln -s /etc/passwd hostapp/channels/webhook.py"),
                                        submit()])
    assert "policy: output:" in message and "symlink points outside the tree (/etc/passwd)" in message


def test_bad_inputs_and_broken_specs_are_refused_before_building(tmp_path: Path, fork: Path,
                                                                 invoke: Invoke) -> None:
    dep = make_deployment(tmp_path, fork, extra="[inputs.add-webhook]\nport = \"http\"\n")
    result = invoke("build", SPECS / "add-webhook", "-d", dep)
    assert result.exit_code == 1
    assert f"{dep}: inputs.add-webhook.port: 'http' is not of type 'integer'" in result.stderr
    bad = write_spec(tmp_path, "broken", "name: broken\ndescription: d\nversion: x")
    result = invoke("build", bad, "-d", make_deployment(tmp_path, fork))
    assert result.exit_code == 1 and "version must be a semantic version" in result.stderr
    assert json.loads(invoke("builds", "--json").stdout) == []


def test_deployment_errors_are_located(tmp_path: Path, fork: Path, invoke: Invoke) -> None:
    dep = tmp_path / "typo.toml"
    dep.write_text(f'name = "x"\ntarget = "{fork}"\n[sandbox]\nmemroy_mb = 5\nbackend = "lxc"\n')
    result = invoke("build", SPECS / "add-webhook", "-d", dep)
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        f"{dep}: sandbox.backend: 'lxc' is not one of ['bwrap', 'docker', 'microvm']",
        f"{dep}: sandbox.memroy_mb: unknown key (did you mean 'memory_mb'?)"]
    dep.write_text('name = "x"\ntarget = "nowhere"\n')
    result = invoke("build", SPECS / "add-webhook", "-d", dep)
    assert "target:" in result.stderr and "is not a folder" in result.stderr
    dep.write_text('name = "x"\ntarget = [\n')
    assert "invalid TOML" in invoke("build", SPECS / "add-webhook", "-d", dep).stderr


def test_command_line_overrides(tmp_path: Path, fork: Path) -> None:
    config_for("docker")
    dep = with_overrides(load_deployment(make_deployment(tmp_path, fork)), sandbox="docker",
                         runtime="runsc")
    assert (dep.sandbox.backend, dep.sandbox.runtime) == ("docker", "runsc")
    outcome = Builder(open_local()).build(load(SPECS / "add-sqlite-memory"), dep)
    assert json.loads(outcome.build.sandbox)["runtime"] == "runsc"


def test_build_by_name_from_the_registry(tmp_path: Path, fork: Path, invoke: Invoke) -> None:
    local = shutil.copytree(SPECS / "add-webhook", tmp_path / "specs" / "add-webhook")
    assert invoke("publish", local).exit_code == 0
    result = invoke("build", "add-webhook@^1", "-d", make_deployment(tmp_path, fork), "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["version"] == "1.0.0"
    result = invoke("build", "add-webhook@2", "-d", make_deployment(tmp_path, fork))
    assert result.exit_code == 1
    assert "no version of add-webhook matches '2'; published: 1.0.0" in result.stderr
