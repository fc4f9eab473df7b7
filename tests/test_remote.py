"""Sharing through a real OCI registry on 127.0.0.1 (without and with htpasswd auth): specs and
builds round-trip between two SKILLC_HOMEs, signatures are enforced, tampering is caught."""

from __future__ import annotations

import base64
import json
import shutil
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import HOSTAPP, SPECS, Invoke
from tests.oci import PASSWORD, USER, Server, registry_server
from tests.sandboxes import config_for

pytestmark = pytest.mark.oci


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    with registry_server(tmp_path / "oci") as s:
        yield s


class Homes:
    """Two (or more) separate SKILLC_HOMEs; ``use`` switches between them."""

    def __init__(self, root: Path, monkeypatch: pytest.MonkeyPatch, invoke: Invoke) -> None:
        self.root, self.mp, self.invoke = root, monkeypatch, invoke

    def use(self, name: str) -> Path:
        home = self.root / name
        self.mp.setenv("SKILLC_HOME", str(home))
        return home

    def run(self, *args: object, code: int = 0) -> str:
        result = self.invoke(*args)
        assert result.exit_code == code, result.output
        return result.stdout + result.stderr

    def trust(self, *public_keys: str, require: bool = True) -> None:
        home = Path(str(self.mp_env()))
        home.mkdir(parents=True, exist_ok=True)
        keys = ", ".join(json.dumps(k) for k in public_keys)
        (home / "config.toml").write_text(f"[trust]\ntrusted_keys = [{keys}]\n"
                                          f"require_signatures = {'true' if require else 'false'}\n")

    @staticmethod
    def mp_env() -> str:
        import os

        return os.environ["SKILLC_HOME"]


@pytest.fixture
def homes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, invoke: Invoke) -> Homes:
    monkeypatch.delenv("SKILLC_REGISTRY_USER", raising=False)
    monkeypatch.delenv("SKILLC_REGISTRY_PASSWORD", raising=False)
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "docker-config"))
    return Homes(tmp_path / "homes", monkeypatch, invoke)


def test_specs_round_trip_and_pull_twice_is_a_no_op(homes: Homes, server: Server) -> None:
    homes.use("a")
    public = homes.run("keys", "generate", "alice").strip().splitlines()[0]
    homes.run("publish", SPECS / "add-webhook", "--sign", "alice")
    ref = f"{server.host}/team/add-webhook"
    assert f"pushed {ref}:1.0.0" in homes.run("push", "add-webhook@1.0.0", ref, "--insecure")
    digest = json.loads(homes.run("show", "add-webhook", "--json"))["digest"]

    homes.use("b")
    homes.trust(public)
    pulled = json.loads(homes.run("pull", f"{ref}:1.0.0", "--insecure", "--json"))
    assert pulled == {"kind": "spec", "name": "add-webhook", "version": "1.0.0",
                      "digest": digest, "new": True}
    assert json.loads(homes.run("show", "add-webhook", "--json"))["digest"] == digest
    assert "trusted" in homes.run("verify", "add-webhook@1.0.0")
    again = homes.run("pull", f"{ref}:1.0.0", "--insecure")
    assert again.startswith("already present: spec add-webhook@1.0.0")
    assert len(json.loads(homes.run("versions", "add-webhook", "--json"))) == 1
    homes.run("registry", "verify")


def test_basic_auth_from_env_or_docker_config(homes: Homes, tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    with registry_server(tmp_path / "auth-oci", auth=True) as server:
        homes.use("a")
        homes.run("publish", SPECS / "add-scheduler")
        ref = f"{server.host}/team/add-scheduler:1.0.0"
        denied = homes.invoke("push", "add-scheduler@1.0.0", ref, "--insecure")
        assert denied.exit_code == 1
        assert "set SKILLC_REGISTRY_USER and SKILLC_REGISTRY_PASSWORD, or `docker login`" in \
            denied.stderr
        monkeypatch.setenv("SKILLC_REGISTRY_USER", USER)
        monkeypatch.setenv("SKILLC_REGISTRY_PASSWORD", PASSWORD)
        homes.run("push", "add-scheduler@1.0.0", ref, "--insecure")
        monkeypatch.delenv("SKILLC_REGISTRY_USER")
        monkeypatch.delenv("SKILLC_REGISTRY_PASSWORD")
        docker_config = tmp_path / "docker-config"
        docker_config.mkdir(exist_ok=True)
        token = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
        (docker_config / "config.json").write_text(json.dumps(
            {"auths": {server.host: {"auth": token}}}))
        homes.use("b")
        assert "pulled spec add-scheduler@1.0.0" in homes.run("pull", ref, "--insecure")
        assert PASSWORD not in homes.run("registry", "verify")


def test_builds_round_trip(homes: Homes, server: Server, tmp_path: Path) -> None:
    config_for("bwrap")
    homes.use("a")
    fork = shutil.copytree(HOSTAPP, tmp_path / "fork")
    dep = tmp_path / "dep.toml"
    dep.write_text(f'name = "dev"\ntarget = "{fork}"\n[agent]\nbackend = "reference"\n')
    build = json.loads(homes.run("build", SPECS / "add-telegram", "-d", dep, "--json"))
    ref = f"{server.host}/team/builds"
    pushed = homes.run("push", "--build", build["build_id"], ref, "--insecure")
    assert f"{ref}:build-{build['build_id']}" in pushed
    homes.use("b")
    pulled = json.loads(homes.run("pull", f"{ref}:build-{build['build_id']}", "--insecure",
                                  "--json"))
    assert pulled == {"kind": "build", "id": build["build_id"], "key": build["key"], "new": True}
    audit = json.loads(homes.run("audit", build["build_id"], "--json"))
    assert audit["build"]["output_tree"] == build["output_tree"]
    assert any("telegram.py" in line for line in audit["diff"])
    homes.run("registry", "verify")
    assert not json.loads(homes.run("pull", f"{ref}:build-{build['build_id']}", "--insecure",
                                    "--json"))["new"]


def test_tampered_blob_is_refused(homes: Homes, server: Server) -> None:
    homes.use("a")
    homes.run("publish", SPECS / "add-webhook")
    ref = f"{server.host}/team/add-webhook:1.0.0"
    homes.run("push", "add-webhook@1.0.0", ref, "--insecure")
    biggest = max(server.blob_files(), key=lambda p: p.stat().st_size)  # the spec's tar
    data = bytearray(biggest.read_bytes())
    data[len(data) // 2] ^= 0xFF
    biggest.chmod(stat.S_IRUSR | stat.S_IWUSR)
    biggest.write_bytes(bytes(data))
    homes.use("b")
    result = homes.invoke("pull", ref, "--insecure")
    assert result.exit_code == 1
    assert "does not match its digest" in result.stderr and "refusing it" in result.stderr
    assert json.loads(homes.run("versions", "add-webhook", "--json")) == []


def test_signature_policy_refuses_unsigned_and_untrusted(homes: Homes, server: Server) -> None:
    homes.use("alice")
    alice = homes.run("keys", "generate", "alice").splitlines()[0]
    homes.use("mallory")
    homes.run("keys", "generate", "mallory")
    homes.run("publish", SPECS / "add-sqlite-memory", "--sign", "mallory")
    homes.run("push", "add-sqlite-memory@1.0.0", f"{server.host}/evil/mem", "--insecure")
    homes.run("publish", SPECS / "add-scheduler")
    homes.run("push", "add-scheduler@1.0.0", f"{server.host}/evil/sched", "--insecure")
    homes.use("bob")
    homes.trust(alice)
    untrusted = homes.invoke("pull", f"{server.host}/evil/mem:1.0.0", "--insecure")
    assert untrusted.exit_code == 1
    assert "refusing add-sqlite-memory@1.0.0" in untrusted.stderr
    assert "it is signed only by untrusted keys: ed25519:" in untrusted.stderr
    unsigned = homes.invoke("pull", f"{server.host}/evil/sched:1.0.0", "--insecure")
    assert "refusing add-scheduler@1.0.0" in unsigned.stderr and "it is not signed" in \
        unsigned.stderr
    assert json.loads(homes.run("versions", "add-scheduler", "--json")) == []


def test_policy_applies_to_build_and_install(homes: Homes, tmp_path: Path) -> None:
    config_for("bwrap")
    homes.use("carol")
    carol = homes.run("keys", "generate", "carol").splitlines()[0]
    homes.trust(carol)
    fork = shutil.copytree(HOSTAPP, tmp_path / "fork")
    dep = tmp_path / "dep.toml"
    dep.write_text(f'name = "dev"\ntarget = "{fork}"\n[agent]\nbackend = "reference"\n')
    refused = homes.invoke("build", SPECS / "add-webhook", "-d", dep)
    assert refused.exit_code == 1 and "it is not signed" in refused.stderr
    homes.run("publish", SPECS / "add-webhook")
    assert "it is not signed" in homes.invoke("install", "add-webhook", "-d", dep).stderr
    assert homes.invoke("verify", "add-webhook@1.0.0").exit_code == 1
    homes.use("carol-signed")
    homes.trust(carol)
    shutil.copytree(homes.root / "carol" / "keys", homes.root / "carol-signed" / "keys")
    homes.run("publish", SPECS / "add-webhook", "--sign", "carol")
    assert "installed 1.0.0" in homes.run("install", "add-webhook", "-d", dep)


def test_remote_build_cache(homes: Homes, server: Server, tmp_path: Path) -> None:
    config_for("bwrap")
    deps = []
    for name in ("a", "b"):
        fork = shutil.copytree(HOSTAPP, tmp_path / f"fork-{name}")
        dep = tmp_path / f"{name}.toml"
        dep.write_text(f'name = "{name}"\ntarget = "{fork}"\n[agent]\nbackend = "reference"\n'
                       f'[cache]\nremote = "{server.host}/team/cache"\npush = true\n'
                       "insecure = true\n")
        deps.append(dep)
    homes.use("a")
    built = json.loads(homes.run("build", SPECS / "add-scheduler", "-d", deps[0], "--json"))
    assert built["cached"] is False
    homes.use("b")
    hit = json.loads(homes.run("build", SPECS / "add-scheduler", "-d", deps[1], "--json"))
    assert hit["cached"] is True and hit["build_id"] == built["build_id"]
    assert hit["output_tree"] == built["output_tree"]
    homes.run("registry", "verify")


def test_keys_and_insecure_only_on_loopback(homes: Homes) -> None:
    home = homes.use("k")
    homes.run("keys", "generate", "me")
    assert (home / "keys" / "me.key").stat().st_mode & 0o777 == 0o600
    assert homes.invoke("keys", "generate", "me").exit_code == 1
    assert homes.run("keys", "list").startswith("me ")
    result = homes.invoke("pull", "registry.example.com/x/y:1", "--insecure")
    assert result.exit_code == 1
    assert "only allowed for registries on loopback" in result.stderr
    bad = homes.invoke("pull", "not a ref")
    assert bad.exit_code == 1 and "expected HOST[:PORT]/REPOSITORY[:TAG]" in bad.stderr
