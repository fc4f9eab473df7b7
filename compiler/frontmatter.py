"""YAML front matter: split it from the body, load it safely, remember key lines.

Aliases are refused (no billion-laughs expansion), timestamps stay strings,
duplicate keys are reported, and every key and list item keeps the line it was
written on so that later checks can point at it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml

from .errors import Problem, SpecError

MAX_FRONT_MATTER_BYTES = 64 * 1024

KeyPath = tuple[str | int, ...]


class _Loader(yaml.SafeLoader):
    """SafeLoader without aliases or implicit timestamps."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()  # type: ignore[no-untyped-call]
            raise yaml.composer.ComposerError(
                None, None, "YAML aliases are not allowed in front matter", event.start_mark
            )
        return super().compose_node(parent, index)


_Loader.yaml_implicit_resolvers = {
    ch: [r for r in resolvers if r[0] != "tag:yaml.org,2002:timestamp"]
    for ch, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


@dataclass(frozen=True)
class FrontMatter:
    """Front matter values, the line of each key path, and the body after it."""

    data: dict[str, Any]
    lines: dict[KeyPath, int]
    body: str
    body_line: int
    problems: list[Problem] = field(default_factory=list)

    def line_of(self, path: KeyPath) -> int:
        """The line of the longest prefix of ``path`` that has one (1 when none)."""
        return line_of(self.lines, path, 1)


def split(text: str, where: str) -> FrontMatter:
    """Split ``text`` (newlines already normalized) into front matter and body."""
    lines = text.split("\n")
    if not lines or lines[0].rstrip() != "---":
        raise SpecError([Problem(where, 1, "error", "SKILL.md must start with YAML front matter "
                                 "(a line '---', the keys, then a closing '---')")])
    end = next((i for i in range(1, len(lines)) if lines[i].rstrip() in ("---", "...")), None)
    if end is None:
        raise SpecError([Problem(where, 1, "error",
                                 "unterminated front matter: no closing '---' line")])
    yaml_text = "\n".join(lines[1:end])
    if len(yaml_text.encode("utf-8")) > MAX_FRONT_MATTER_BYTES:
        raise SpecError([Problem(where, 1, "error",
                                 f"front matter is larger than {MAX_FRONT_MATTER_BYTES} bytes")])
    data, key_lines, problems = _load(yaml_text, where, first_line=2)
    return FrontMatter(data, key_lines, "\n".join(lines[end + 1:]), end + 2, problems)


def _load(text: str, where: str, first_line: int) -> tuple[dict[str, Any], dict[KeyPath, int],
                                                          list[Problem]]:
    loader: _Loader | None = None
    try:
        loader = _Loader(text)
        node = loader.get_single_node()
        if node is None:
            raise SpecError([Problem(where, first_line - 1, "error", "front matter is empty")])
        if not isinstance(node, yaml.MappingNode):
            raise SpecError([Problem(where, node.start_mark.line + first_line, "error",
                                     "front matter must be a mapping of keys to values")])
        key_lines: dict[KeyPath, int] = {}
        problems: list[Problem] = []
        _index(node, (), first_line, key_lines, problems, where)
        data = loader.construct_document(node)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + first_line if mark else first_line
        raise SpecError([Problem(where, line, "error",
                                 f"invalid YAML: {exc.problem or exc.context}")]) from exc
    except yaml.YAMLError as exc:
        raise SpecError([Problem(where, first_line, "error", f"invalid YAML: {exc}")]) from exc
    except RecursionError as exc:
        raise SpecError([Problem(where, first_line, "error", "front matter is nested too deeply")]
                        ) from exc
    finally:
        if loader is not None:
            loader.dispose()
    bad = _first_non_json(data, ())
    if bad is not None:
        path, kind = bad
        raise SpecError([Problem(where, line_of(key_lines, path, first_line), "error",
                                 f"{dotted(path)}: {kind} values are not allowed")])
    return data, key_lines, problems


def _index(node: Any, path: KeyPath, first: int, out: dict[KeyPath, int],
           problems: list[Problem], where: str) -> None:
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key, value in node.value:
            line = key.start_mark.line + first
            if not isinstance(key, yaml.ScalarNode) or key.tag != "tag:yaml.org,2002:str":
                raise SpecError([Problem(where, line, "error", "keys must be plain strings")])
            if key.value in seen:
                problems.append(Problem(where, line, "error",
                                        f"duplicate key '{dotted((*path, key.value))}'"))
            seen.add(key.value)
            out[(*path, key.value)] = line
            _index(value, (*path, key.value), first, out, problems, where)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            out[(*path, i)] = item.start_mark.line + first
            _index(item, (*path, i), first, out, problems, where)


def _first_non_json(value: Any, path: KeyPath) -> tuple[KeyPath, str] | None:
    if isinstance(value, dict):
        for k, v in value.items():
            found = _first_non_json(v, (*path, k))
            if found:
                return found
        return None
    if isinstance(value, list):
        for i, v in enumerate(value):
            found = _first_non_json(v, (*path, i))
            if found:
                return found
        return None
    if isinstance(value, float) and (value != value or value in (float("inf"), float("-inf"))):
        return path, "NaN or infinite"
    if value is None or isinstance(value, str | int | float | bool):
        return None
    return path, type(value).__name__


def line_of(lines: dict[KeyPath, int], path: KeyPath, default: int) -> int:
    """The line of the longest prefix of ``path`` found in ``lines``."""
    for end in range(len(path), 0, -1):
        if tuple(path[:end]) in lines:
            return lines[tuple(path[:end])]
    return default


def dotted(path: KeyPath) -> str:
    """A key path as ``a.b.0``."""
    return ".".join(str(p) for p in path) or "(root)"
