"""Read a skill folder (SKILL.md plus optional files) into a frozen ``Spec``.

Limits (documented contract): SKILL.md at most 1 MiB; the folder at most 1,000
files and 8 MiB in all, no file over 4 MiB; no device files, no symlink that
leaves the folder. Text must be UTF-8 without a byte order mark; CRLF line ends
are accepted.
"""

from __future__ import annotations

import functools
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from markdown_it import MarkdownIt
from wcmatch import glob

from registry.tree import DEFAULT_IGNORE, Limits, Tree, scan

from .errors import NotFoundError, Problem, SpecError, TreeError
from .frontmatter import FrontMatter, KeyPath, split

SKILL_FILE = "SKILL.md"
MAX_SKILL_MD_BYTES = 1024 * 1024
SPEC_LIMITS = Limits(max_files=1000, max_total_bytes=8 * 1024 * 1024, max_file_bytes=4 * 1024 * 1024)
OPTIONAL_DIRS = ("reference", "tests", "scripts", "references", "assets")
SKILLC_KEYS = ("version", "requires", "inputs", "permissions", "acceptance")


@dataclass(frozen=True)
class Section:
    """A heading of the body and the line it is on."""

    title: str
    level: int
    line: int


@dataclass(frozen=True)
class CodeBlock:
    """A fenced or indented code block of the body."""

    info: str
    line: int
    text: str


@dataclass(frozen=True)
class Document:
    """SKILL.md parsed: front matter, body, sections and code blocks."""

    path: str
    front: FrontMatter
    sections: tuple[Section, ...]
    code_blocks: tuple[CodeBlock, ...]
    line_count: int

    @property
    def body(self) -> str:
        """The instructions after the front matter."""
        return self.front.body


@dataclass(frozen=True)
class Spec:
    """A parsed skill folder; its ``digest`` is the tree digest, the content identity."""

    root: Path
    doc: Document
    tree: Tree

    @property
    def meta(self) -> dict[str, Any]:
        """The front matter values."""
        return self.doc.front.data

    @property
    def digest(self) -> str:
        """The tree digest of the whole folder."""
        return self.tree.digest

    @property
    def name(self) -> str:
        """The spec's name (falls back to the folder name)."""
        name = self.meta.get("name")
        return name if isinstance(name, str) and name else self.root.name

    @property
    def version(self) -> str | None:
        """The semantic version, if any."""
        v = self.meta.get("version")
        return v if isinstance(v, str) else None

    @property
    def description(self) -> str:
        """The one-paragraph description."""
        d = self.meta.get("description")
        return d if isinstance(d, str) else ""

    def get(self, *path: str, default: Any = None) -> Any:
        """A nested front matter value, or ``default``."""
        value: Any = self.meta
        for key in path:
            if not isinstance(value, dict) or key not in value:
                return default
            value = value[key]
        return value

    def strings(self, *path: str) -> tuple[str, ...]:
        """A list-of-strings value (other shapes read as empty; lint reports them)."""
        value = self.get(*path)
        return tuple(v for v in value if isinstance(v, str)) if isinstance(value, list) else ()

    @property
    def requires_env(self) -> tuple[str, ...]:
        """Names of the secrets the integration reads."""
        return self.strings("requires", "env")

    @property
    def requires_skills(self) -> dict[str, str]:
        """Other specs this one needs, name → version range."""
        value = self.get("requires", "skills")
        return {k: v for k, v in value.items() if isinstance(v, str)} \
            if isinstance(value, dict) else {}

    @property
    def inputs_schema(self) -> dict[str, Any]:
        """The JSON Schema of the per-deployment inputs."""
        value = self.get("inputs")
        return dict(value) if isinstance(value, dict) else {}

    @property
    def network(self) -> tuple[str, ...]:
        """Hosts the integration may reach at run time."""
        return self.strings("permissions", "network")

    @property
    def paths(self) -> tuple[str, ...]:
        """Globs of the fork the build may touch."""
        return self.strings("permissions", "paths")

    @property
    def protected_allowed(self) -> tuple[str, ...]:
        """Globs of protected paths (CI, agent instructions) the build may still change."""
        return self.strings("permissions", "protected")

    @property
    def acceptance_command(self) -> str | None:
        """The command that runs the spec's own tests."""
        cmd = self.get("acceptance", "command")
        return cmd if isinstance(cmd, str) and cmd else None

    @property
    def has_skillc_keys(self) -> bool:
        """True when the front matter uses any of skillc's own keys."""
        return any(k in self.meta for k in SKILLC_KEYS)

    def may_touch(self, path: str) -> bool:
        """True when ``path`` (relative to the fork) matches ``permissions.paths``."""
        return matches(path, self.paths)

    def line_of(self, path: KeyPath) -> int:
        """The SKILL.md line of a front matter key path."""
        return self.doc.front.line_of(path)

    def files_under(self, folder: str) -> list[str]:
        """Paths of the files under ``folder/`` (relative to the spec root)."""
        prefix = folder.rstrip("/") + "/"
        return [e.path for e in self.tree.entries if e.path.startswith(prefix)]


def matches(path: str, patterns: tuple[str, ...] | list[str]) -> bool:
    """Glob match with ``**`` spanning folders and ``*`` matching dotfiles."""
    return bool(patterns) and _matcher(tuple(patterns)).match(path)


@functools.lru_cache(maxsize=512)
def _matcher(patterns: tuple[str, ...]) -> glob.WcMatcher[str]:
    return glob.compile(list(patterns), flags=glob.GLOBSTAR | glob.DOTGLOB | glob.BRACE)


def decode(data: bytes, where: str) -> str:
    """Decode spec text: UTF-8, no BOM; CRLF and CR become LF."""
    if data.startswith(b"\xef\xbb\xbf"):
        raise SpecError([Problem(where, 1, "error",
                                 "file starts with a byte order mark; save it as UTF-8 without BOM")])
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise SpecError([Problem(where, line, "error",
                                 f"invalid UTF-8 at byte {exc.start}: {exc.reason}")]) from exc
    if "\x00" in text:
        line = text.count("\n", 0, text.index("\x00")) + 1
        raise SpecError([Problem(where, line, "error", "NUL character in text")])
    return text.replace("\r\n", "\n").replace("\r", "\n")


_MD = MarkdownIt("commonmark")


@functools.lru_cache(maxsize=256)
def parse_document(data: bytes, where: str) -> Document:
    """Parse SKILL.md bytes into a ``Document`` or raise ``SpecError`` (memoized: a status
    over many deployments reads the same specs again and again)."""
    if len(data) > MAX_SKILL_MD_BYTES:
        raise SpecError([Problem(where, 0, "error",
                                 f"{len(data)} bytes; SKILL.md may be at most 1 MiB")])
    text = decode(data, where)
    front = split(text, where)
    offset = front.body_line
    sections: list[Section] = []
    blocks: list[CodeBlock] = []
    tokens = _MD.parse(front.body)
    for i, tok in enumerate(tokens):
        line = (tok.map[0] if tok.map else 0) + offset
        if tok.type == "heading_open":
            title = tokens[i + 1].content.strip() if i + 1 < len(tokens) else ""
            sections.append(Section(title, int(tok.tag[1:]), line))
        elif tok.type in ("fence", "code_block"):
            blocks.append(CodeBlock(tok.info.strip(), line, tok.content))
    return Document(where, front, tuple(sections), tuple(blocks), len(text.splitlines()))


def load(root: Path | str) -> Spec:
    """Read the skill folder at ``root``; every problem found is in the ``SpecError``."""
    root = Path(root)
    skill = root / SKILL_FILE
    where = str(skill)
    if not root.is_dir():
        raise NotFoundError(f"{root}: not a folder (a spec is a folder holding {SKILL_FILE})")
    try:
        st = os.lstat(skill)
    except FileNotFoundError:
        raise NotFoundError(f"{root}: no {SKILL_FILE} in this folder") from None
    if not stat.S_ISREG(st.st_mode):
        raise SpecError([Problem(where, 0, "error", "SKILL.md must be a regular file, not a "
                                 "symlink or device")])
    if st.st_size > MAX_SKILL_MD_BYTES:
        raise SpecError([Problem(where, 0, "error",
                                 f"{st.st_size} bytes; SKILL.md may be at most 1 MiB")])
    doc = parse_document(skill.read_bytes(), where)
    try:
        tree = scan(root, SPEC_LIMITS, DEFAULT_IGNORE)
    except TreeError as exc:
        raise SpecError([Problem(exc.where, 0, "error", exc.reason)]) from exc
    return Spec(root, doc, tree)
