"""`skillc lint` and `skillc show`: exact located messages for each kind of bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import FIXTURES, SPECS, Invoke, write_spec

BAD = FIXTURES / "specs"
NO_SKILLC_KEYS = ("warning: no skillc keys (version, requires, inputs, permissions, acceptance): "
                  "a plain Agent Skill can be linted and shown, not built")

EXPECTED = {
    "no-front-matter": ["SKILL.md:1: error: SKILL.md must start with YAML front matter "
                        "(a line '---', the keys, then a closing '---')"],
    "unterminated-front-matter": ["SKILL.md:1: error: unterminated front matter: "
                                  "no closing '---' line"],
    "not-a-mapping": ["SKILL.md:2: error: front matter must be a mapping of keys to values"],
    "yaml-aliases": ["SKILL.md:5: error: invalid YAML: YAML aliases are not allowed in front matter"],
    "byte-order-mark": ["SKILL.md:1: error: file starts with a byte order mark; "
                        "save it as UTF-8 without BOM"],
    "invalid-utf8": ["SKILL.md:8: error: invalid UTF-8 at byte 69: invalid continuation byte"],
    "duplicate-key": [f"SKILL.md:1: {NO_SKILLC_KEYS}",
                      "SKILL.md:4: error: duplicate key 'description'"],
    "empty-body": [f"SKILL.md:1: {NO_SKILLC_KEYS}",
                   "SKILL.md:5: error: no instructions after the front matter"],
    "name-mismatch": [f"SKILL.md:1: {NO_SKILLC_KEYS}",
                      "SKILL.md:2: error: name 'other-name' must equal the folder name "
                      "'name-mismatch'"],
    "typo-key": ["SKILL.md:1: error: missing required key 'description'",
                 "SKILL.md:3: warning: unknown key 'descripton' (did you mean 'description'?)",
                 "SKILL.md:7: warning: unknown key 'permissions.netwrok' (did you mean 'network'?)"],
    "bad-values": [
        "SKILL.md:1: warning: no acceptance tests: set acceptance.command to run the spec's tests/",
        "SKILL.md:3: error: description: description must be 1-1024 characters without '<' or '>'",
        "SKILL.md:4: error: version: version must be a semantic version such as 1.2.0",
        "SKILL.md:6: error: requires.env.0: environment variable names are upper case letters, "
        "digits and '_'",
        "SKILL.md:8: error: invalid version range '>>1': cannot read '>>1'",
        "SKILL.md:12: error: inputs is not a valid JSON Schema: 'integr' is not valid under any "
        "of the given schemas",
        "SKILL.md:15: error: permissions.paths: '/etc/passwd' must be relative to the fork and "
        "may not contain '..'",
        "SKILL.md:16: error: permissions.paths: '../outside/**' must be relative to the fork and "
        "may not contain '..'"],
    "tests-not-run": ["SKILL.md:8: warning: acceptance.command never runs the tests/ folder "
                      "(its files are copied to .skillc/tests)"],
    "bad-template": [
        "SKILL.md:1: warning: no acceptance tests: set acceptance.command to run the spec's tests/",
        "reference/app/main.py.j2:2: error: template syntax error: Unexpected end of template. "
        "Jinja was looking for the following tags: 'elif' or 'else' or 'endif'. The innermost "
        "block that needs to be closed is 'if'."],
    "crlf-line-ends": [f"SKILL.md:1: {NO_SKILLC_KEYS}"],
    "pdf-tools": [f"SKILL.md:1: {NO_SKILLC_KEYS}"],
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_each_bad_input_has_its_located_message(name: str, invoke: Invoke) -> None:
    result = invoke("lint", BAD / name)
    lines = result.stdout.splitlines()
    assert lines == [f"{BAD / name}/{line}" for line in EXPECTED[name]]
    has_error = any(": error: " in line for line in lines)
    assert result.exit_code == (1 if has_error else 0)


def test_example_specs_lint_clean(invoke: Invoke) -> None:
    specs = sorted(SPECS.iterdir())
    assert len(specs) >= 4
    result = invoke("lint", *specs)
    assert result.exit_code == 0
    assert result.stdout == ""
    assert f"{len(specs)} spec(s): 0 error(s), 0 warning(s)" in result.stderr


def test_json_output(invoke: Invoke) -> None:
    result = invoke("lint", "--json", BAD / "typo-key", SPECS / "add-webhook")
    data = json.loads(result.stdout)
    assert result.exit_code == 1
    assert (data["errors"], data["warnings"]) == (1, 2)
    bad, good = data["specs"]
    assert bad["ok"] is False and good["ok"] is True and good["name"] == "add-webhook"
    assert bad["problems"][1] == {"path": f"{BAD / 'typo-key'}/SKILL.md", "line": 3,
                                  "severity": "warning",
                                  "message": "unknown key 'descripton' (did you mean 'description'?)"}


def test_every_problem_at_once_across_specs(invoke: Invoke) -> None:
    result = invoke("lint", BAD / "bad-values", BAD / "no-front-matter")
    assert result.exit_code == 1
    assert result.stdout.count(": error: ") == 8


def test_long_skill_md_warns(tmp_path: Path, invoke: Invoke) -> None:
    body = "\n# Steps\n\n" + "line\n" * 520
    folder = write_spec(tmp_path, "long", "name: long\ndescription: d", body)
    result = invoke("lint", folder)
    assert f"{folder}/SKILL.md:501: warning: SKILL.md has 527 lines; keep it under 500 and " \
           "move detail into references/" in result.stdout.splitlines()


def test_missing_acceptance_folder_warns(tmp_path: Path, invoke: Invoke) -> None:
    folder = write_spec(tmp_path, "notests", "name: notests\ndescription: d\nversion: 1.0.0\n"
                        "permissions: {paths: [a.py]}\nacceptance: {command: python3 -m unittest}")
    assert invoke("lint", folder).stdout.splitlines() == [
        f"{folder}/SKILL.md:6: warning: acceptance.command is set but the spec has no tests/ folder"]


def test_reference_outside_paths_warns(tmp_path: Path, invoke: Invoke) -> None:
    folder = write_spec(tmp_path, "ref", "name: ref\ndescription: d\nversion: 1.0.0\n"
                        "permissions: {paths: [app/**]}", files={"reference/setup.py": ""})
    assert f"{folder}/reference/setup.py: warning: renders to setup.py, outside " \
           "permissions.paths" in invoke("lint", folder).stdout


def test_show_prints_the_parsed_spec(invoke: Invoke) -> None:
    result = invoke("show", SPECS / "add-telegram")
    assert result.exit_code == 0
    assert result.stdout.startswith("add-telegram 1.0.0\n")
    assert "reference/hostapp/channels/telegram.py.j2" in result.stdout
    data = json.loads(invoke("show", "--json", SPECS / "add-telegram").stdout)
    assert data["front_matter"]["requires"] == {"env": ["TELEGRAM_BOT_TOKEN"]}
    assert data["sections"][0] == {"title": "Goal", "level": 1, "line": 38}
    assert data["digest"].startswith("sha256:")


def test_show_of_a_broken_spec_is_a_located_error(invoke: Invoke) -> None:
    result = invoke("show", BAD / "not-a-mapping")
    assert result.exit_code == 1
    assert result.stderr.strip() == (f"{BAD / 'not-a-mapping'}/SKILL.md:2: error: front matter "
                                     "must be a mapping of keys to values")
    assert "Traceback" not in result.stderr
