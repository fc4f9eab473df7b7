"""Lint a skill folder: every problem at once, each with its file and line."""

from __future__ import annotations

import difflib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jinja2
from jsonschema import Draft202012Validator, SchemaError

from .errors import Problem, SpecError, UserError
from .frontmatter import KeyPath, dotted
from .prompts import environment
from .resources import schema
from .spec import Spec, load
from .versions import parse_range

MAX_BODY_LINES = 500


def lint(root: Path | str) -> tuple[Spec | None, list[Problem]]:
    """Load and check the spec at ``root``; returns it (if readable) and every problem."""
    try:
        spec = load(root)
    except SpecError as exc:
        return None, list(exc.problems)
    return spec, check(spec)


def check(spec: Spec) -> list[Problem]:
    """Every problem of a loaded spec, errors and warnings, sorted by file and line."""
    problems = list(spec.doc.front.problems)
    for check_fn in (_schema, _name, _inputs, _ranges, _paths, _unknown_keys, _completeness,
                     _body, _references):
        problems.extend(check_fn(spec))
    return sorted(problems, key=lambda p: (p.path, p.line, p.severity, p.message))


def errors(problems: list[Problem]) -> list[Problem]:
    """Only the errors."""
    return [p for p in problems if p.severity == "error"]


def _at(spec: Spec, path: KeyPath, message: str, severity: str = "error") -> Problem:
    return Problem(spec.doc.path, spec.line_of(path), severity, message)


def _schema(spec: Spec) -> Iterator[Problem]:
    for err in Draft202012Validator(schema("spec")).iter_errors(spec.meta):
        path: KeyPath = tuple(err.absolute_path)
        if err.validator == "required":
            missing = err.message.split("'")[1]
            yield _at(spec, path, f"missing required key '{dotted((*path, missing))}'")
            continue
        detail = err.schema.get("x-error") if isinstance(err.schema, dict) else None
        yield _at(spec, path, f"{dotted(path)}: {detail or err.message}")


def _name(spec: Spec) -> Iterator[Problem]:
    name = spec.meta.get("name")
    folder = spec.root.resolve().name
    if isinstance(name, str) and name != folder:
        yield _at(spec, ("name",), f"name '{name}' must equal the folder name '{folder}'")


def _inputs(spec: Spec) -> Iterator[Problem]:
    inputs = spec.meta.get("inputs")
    if not isinstance(inputs, dict):
        return
    try:
        Draft202012Validator.check_schema(inputs)
    except SchemaError as exc:
        path: KeyPath = ("inputs", *exc.absolute_path)
        yield _at(spec, path, f"inputs is not a valid JSON Schema: {exc.message}")


def _ranges(spec: Spec) -> Iterator[Problem]:
    skills = spec.get("requires", "skills")
    if not isinstance(skills, dict):
        return
    for name, text in skills.items():
        if isinstance(text, str):
            try:
                parse_range(text)
            except UserError as exc:
                yield _at(spec, ("requires", "skills", name), str(exc))
        if name == spec.name:
            yield _at(spec, ("requires", "skills", name), "a spec cannot require itself")


def _paths(spec: Spec) -> Iterator[Problem]:
    for key in ("paths", "protected"):
        items = spec.get("permissions", key)
        for i, glob in enumerate(items if isinstance(items, list) else []):
            if isinstance(glob, str) and (glob.startswith("/") or ".." in glob.split("/")):
                yield _at(spec, ("permissions", key, i),
                          f"permissions.{key}: '{glob}' must be relative to the fork and "
                          "may not contain '..'")


def _unknown_keys(spec: Spec) -> Iterator[Problem]:
    yield from _unknown_in(spec, schema("spec"), spec.meta, ())


def _unknown_in(spec: Spec, sch: dict[str, Any], value: Any, path: KeyPath) -> Iterator[Problem]:
    props = sch.get("properties")
    if not isinstance(value, dict) or not props:
        return
    for key, sub in value.items():
        if key in props:
            yield from _unknown_in(spec, props[key], sub, (*path, key))
        elif "additionalProperties" not in sch:
            near = difflib.get_close_matches(key, list(props), n=1, cutoff=0.75)
            hint = f" (did you mean '{near[0]}'?)" if near else ""
            yield _at(spec, (*path, key), f"unknown key '{dotted((*path, key))}'{hint}", "warning")


def _completeness(spec: Spec) -> Iterator[Problem]:
    if not spec.has_skillc_keys:
        yield _at(spec, (), "no skillc keys (version, requires, inputs, permissions, "
                  "acceptance): a plain Agent Skill can be linted and shown, not built", "warning")
        return
    if "version" not in spec.meta:
        yield _at(spec, (), "no version: publishing needs one", "warning")
    if not spec.paths:
        yield _at(spec, ("permissions",), "permissions.paths is empty: a build may not change "
                  "any file of the fork", "warning")
    tests = spec.files_under("tests")
    command = spec.acceptance_command
    if not command:
        yield _at(spec, (), "no acceptance tests: set acceptance.command to run the spec's "
                  "tests/", "warning")
    elif not tests:
        yield _at(spec, ("acceptance", "command"), "acceptance.command is set but the spec has "
                  "no tests/ folder", "warning")
    if tests and command and "tests" not in command:
        yield _at(spec, ("acceptance", "command"), "acceptance.command never runs the tests/ "
                  "folder (its files are copied to .skillc/tests)", "warning")


def _body(spec: Spec) -> Iterator[Problem]:
    doc = spec.doc
    if not doc.body.strip():
        yield Problem(doc.path, doc.front.body_line, "error",
                      "no instructions after the front matter")
        return
    if not doc.sections:
        yield Problem(doc.path, doc.front.body_line, "warning",
                      "the instructions have no headings; split them into sections")
    seen: dict[str, int] = {}
    for section in doc.sections:
        if section.title in seen:
            yield Problem(doc.path, section.line, "warning",
                          f"duplicate section '{section.title}' (first on line {seen[section.title]})")
        seen.setdefault(section.title, section.line)
    if doc.line_count > MAX_BODY_LINES:
        yield Problem(doc.path, MAX_BODY_LINES + 1, "warning",
                      f"SKILL.md has {doc.line_count} lines; keep it under {MAX_BODY_LINES} and "
                      "move detail into references/")


def _references(spec: Spec) -> Iterator[Problem]:
    from .reference import target_path  # the reference agent's naming rule

    for path in spec.files_under("reference"):
        where = str(spec.root / path)
        target = target_path(path)
        if spec.paths and not spec.may_touch(target):
            yield Problem(where, 0, "warning",
                          f"renders to {target}, outside permissions.paths")
        if not path.endswith(".j2"):
            continue
        try:
            source = (spec.root / path).read_text("utf-8")
            environment().parse(source)
        except UnicodeDecodeError:
            yield Problem(where, 0, "error", "template is not UTF-8 text")
        except jinja2.TemplateSyntaxError as exc:
            yield Problem(where, exc.lineno, "error", f"template syntax error: {exc.message}")
