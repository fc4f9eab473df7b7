"""Property: the parser returns a Spec or raises SpecError — never crashes, never hangs."""

from __future__ import annotations

from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from compiler.errors import SpecError
from compiler.lint import check
from compiler.spec import load, parse_document
from tests.conftest import SPECS, write_spec

SEED = (SPECS / "add-webhook" / "SKILL.md").read_bytes()
YAMLISH = st.sampled_from([b"---\n", b"\n", b": ", b"- ", b"&a ", b"*a", b"[", b"{", b"!!binary ",
                           b"!!python/object:os.system ", b"\xef\xbb\xbf", b"\r\n", b"\xff",
                           b"```", b"# ", b"name: x", b"'", b'"', b"? ", b"\t", b"%YAML 1.1\n"])


def _mutate(data: bytes, edits: list[tuple[int, int, bytes]]) -> bytes:
    for pos, cut, insert in edits:
        at = pos % (len(data) + 1)
        data = data[:at] + insert + data[at + cut:]
    return data


def _parse(data: bytes) -> None:
    try:
        doc = parse_document(data, "SKILL.md")
    except SpecError as exc:
        assert exc.problems and all(p.severity == "error" for p in exc.problems)
        return
    assert isinstance(doc.front.data, dict)
    assert all(s.line >= doc.front.body_line for s in doc.sections)


@settings(max_examples=400, deadline=2000, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=2000))
def test_random_bytes(data: bytes) -> None:
    _parse(data)


@settings(max_examples=400, deadline=2000, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 40),
                          st.one_of(YAMLISH, st.binary(max_size=20))), max_size=8))
def test_mutated_real_spec(edits: list[tuple[int, int, bytes]]) -> None:
    _parse(_mutate(SEED, edits))


@settings(max_examples=200, deadline=2000)
@given(st.text(max_size=600))
def test_random_front_matter_text(text: str) -> None:
    _parse(f"---\n{text}\n---\n\n# Body\n".encode("utf-8", "surrogatepass"))


def test_lint_checks_never_crash_on_odd_values(tmp_path: Path) -> None:
    odd = ("name: 5\ndescription: [1]\nversion: 1\nrequires: x\ninputs: 3\npermissions:\n"
           "  paths: 7\n  network: {a: 1}\nacceptance: []\nmetadata: {a: {b: c}}")
    check(load(write_spec(tmp_path, "odd", odd)))
