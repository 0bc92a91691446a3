"""Loading: positions for every key and value, JSON input, `${VAR}` interpolation, and the bounds
on what a document may hold, refused while it is read."""

from __future__ import annotations

from pathlib import Path

import pytest

from flowspec.errors import Diagnostic, SpecInvalid
from flowspec.limits import (
    MAX_ALIAS_EXPANSION,
    MAX_DEPTH,
    MAX_DOCUMENT_BYTES,
    MAX_EDGES,
    MAX_NODES,
    MAX_NUMBER_DIGITS,
    MAX_TOOLS_PER_MODEL,
    depth,
)
from flowspec.spec.load import interpolate, parse, read

TEXT = """\
flowspec: 1
name: demo
nodes:
  llm:
    type: openai.responses
    api_key: ${SECRET_KEY}
    base_url: ${env:BASE:-http://127.0.0.1:1/v1}
    organization: price is $$5
edges: [a -> b]
"""


def test_positions_of_keys_and_values() -> None:
    doc = parse(TEXT, "demo.yaml")
    assert doc.keys["/nodes/llm/type"] == (5, 5)
    assert doc.values["/nodes/llm/type"] == (5, 11)
    assert doc.values["/edges/0"] == (9, 9)
    assert doc.position("/nodes/llm/missing/deeper") == doc.values["/nodes/llm"]


def test_json_specs_load_with_positions() -> None:
    doc = parse('{"flowspec": 1,\n "name": "x",\n "nodes": {"a": {"type": "transport.text"}}}',
                "x.json")
    assert doc.data["nodes"]["a"]["type"] == "transport.text"
    assert doc.keys["/nodes"][0] == 3


def test_interpolation_defaults_escapes_and_taint() -> None:
    doc = parse(TEXT, "demo.yaml")
    problems = interpolate(doc, {"SECRET_KEY": "sk-canary"})
    assert problems == []
    llm = doc.data["nodes"]["llm"]
    assert llm["api_key"] == "sk-canary"
    assert llm["base_url"] == "http://127.0.0.1:1/v1"
    assert llm["organization"] == "price is $5"
    assert doc.interpolated == {"/nodes/llm/api_key"}


def test_missing_variable_is_located_and_names_no_value() -> None:
    doc = parse(TEXT, "demo.yaml")
    (problem,) = interpolate(doc, {})
    assert (problem.code, problem.line, problem.column) == ("env.missing", 6, 14)
    assert problem.pointer == "/nodes/llm/api_key"
    assert "SECRET_KEY" in problem.message


@pytest.mark.parametrize(
    ("text", "code", "line"),
    [
        ("a: [1\nb: 2\n", "yaml.syntax", 2),
        ("a: 1\na: 2\n", "yaml.duplicate-key", 2),
        ("", "spec.empty", 1),
        ("a:\n\tb: 1\n", "yaml.syntax", 2),
    ],
)
def test_syntax_problems_are_located(text: str, code: str, line: int) -> None:
    with pytest.raises(SpecInvalid) as info:
        parse(text, "bad.yaml")
    (diagnostic,) = info.value.diagnostics
    assert (diagnostic.code, diagnostic.line) == (code, line)


# -- bounds (flowspec.limits) --------------------------------------------------------------------

def billion_laughs(names: str = "abcdefghi", width: int = 9) -> str:
    """`a: &a [lol x9]`, `b: &b [*a x9]`, ...: 9 ** 9 values once expanded."""
    text = "a: &a [" + ",".join(["lol"] * width) + "]\n"
    for name, inner in zip(names[1:], names, strict=False):
        text += f"{name}: &{name} [" + ",".join([f"*{inner}"] * width) + "]\n"
    return text


def refused(text: str, source: str = "bad.yaml") -> Diagnostic:
    """The one diagnostic `parse` refuses `text` with (and nothing but SpecInvalid)."""
    with pytest.raises(SpecInvalid) as info:
        parse(text, source)
    (diagnostic,) = info.value.diagnostics
    assert diagnostic.source == source and diagnostic.line is not None, diagnostic
    return diagnostic


def test_an_alias_bomb_is_refused_where_expansion_passes_the_limit() -> None:
    text = billion_laughs()
    assert len(text) < 400
    problem = refused(text)
    assert (problem.code, problem.line, problem.pointer) == ("limit.aliases", 5, "/e/0")
    assert f"{MAX_ALIAS_EXPANSION:,}" in problem.message


@pytest.mark.parametrize("text", [
    # mappings instead of lists, and merge keys
    "a: &a {x: 1, y: 2, z: 3, w: 4}\n" + "".join(
        f"b{i}: &b{i} {{" + ", ".join(f"k{j}: *{'a' if i == 0 else f'b{i - 1}'}"
                                      for j in range(8)) + "}\n" for i in range(6)),
    "a: &a {x: 1, y: 2}\nb: [" + ", ".join("{<<: *a}" for _ in range(6000)) + "]\n",
    # one wide anchor used a few times, and a small one used very many times
    "a: &a [" + ", ".join(["1"] * 4000) + "]\nb: [*a, *a, *a]\n",
    "a: &a x\nb: [" + ", ".join(["*a"] * (MAX_ALIAS_EXPANSION + 1)) + "]\n",
])
def test_alias_bombs_of_other_shapes_are_refused(text: str) -> None:
    assert refused(text).code == "limit.aliases"


def test_an_alias_inside_its_own_anchor_is_refused() -> None:
    problem = refused("a: &a {b: [*a]}\n")
    assert (problem.code, problem.pointer) == ("limit.aliases", "/a/b/0")
    assert "without end" in problem.message


def test_few_small_aliases_are_fine() -> None:
    doc = parse("base: &base {type: transport.text}\nnodes: {a: *base, b: *base}\n")
    assert doc.data["nodes"] == {"a": {"type": "transport.text"}, "b": {"type": "transport.text"}}


@pytest.mark.parametrize("opened", [MAX_DEPTH + 1, 1000, 100_000])
def test_deep_flow_nesting_is_refused_at_the_limit(opened: int) -> None:
    problem = refused("nodes: " + "[" * opened + "]" * opened + "\n")
    assert (problem.code, problem.line) == ("limit.depth", 1)
    assert problem.column is not None and problem.column <= len("nodes: ") + MAX_DEPTH + 2
    assert str(MAX_DEPTH) in problem.message


def test_deep_block_nesting_is_refused_at_the_limit() -> None:
    problem = refused("nodes:\n" + "- " * 100_000 + "x\n")
    assert (problem.code, problem.line) == ("limit.depth", 2)
    mapping = "".join(" " * level + f"k{level}:\n" for level in range(MAX_DEPTH + 5))
    problem = refused(mapping)
    assert (problem.code, problem.line) == ("limit.depth", MAX_DEPTH + 1)
    assert problem.pointer == "".join(f"/k{level}" for level in range(MAX_DEPTH))


def test_nesting_at_the_limit_parses() -> None:
    doc = parse("[" * MAX_DEPTH + "]" * MAX_DEPTH, "ok.json")
    assert depth(doc.data) == MAX_DEPTH


@pytest.mark.parametrize(("number", "length"), [
    ("9" * 5000, 5000), ("-" + "1" * MAX_NUMBER_DIGITS, MAX_NUMBER_DIGITS + 1),
    ("1." + "5" * 5000, 5002), ("0x" + "f" * 100, 102), ("0o" + "7" * 5000, 5002),
    ("1" * 60 + "e5", 62), ("!!int '" + "9" * 5000 + "'", 5000),
])
def test_long_numbers_are_refused(number: str, length: int) -> None:
    problem = refused(f"flowspec: 1\ntimeout_s: {number}\n")
    assert (problem.code, problem.line, problem.column) == ("limit.digits", 2, 12)
    assert f"{length:,}" in problem.message and str(MAX_NUMBER_DIGITS) in problem.message


def test_long_texts_that_only_look_like_digits_are_fine() -> None:
    doc = parse(f"a: '{'9' * 5000}'\nb: {'3f' * 40}\nc: {'9' * MAX_NUMBER_DIGITS}\n")
    assert doc.data["a"] == "9" * 5000 and doc.data["b"] == "3f" * 40
    assert doc.data["c"] == int("9" * MAX_NUMBER_DIGITS)


@pytest.mark.parametrize(("text", "line", "column"), [
    ("flowspec: 1\nname: a\x00b\n", 2, 8),
    ("flowspec: 1\nname: 'a\x1bb'\n", 2, 9),
    ("a: \x7f", 1, 4),
    ("a: '\ud800'\n", 1, 5),
])
def test_control_characters_are_located_syntax_errors(text: str, line: int, column: int) -> None:
    problem = refused(text)
    assert (problem.code, problem.line, problem.column) == ("yaml.syntax", line, column)
    assert "not a printable character" in problem.message


@pytest.mark.parametrize(("text", "kind"), [
    ("a: 2020-13-45\n", "timestamp"), ("a: !!int abc\n", "int"), ("a: !!float x\n", "float"),
    ("a: !!bool maybe\n", "bool"),
])
def test_values_yaml_cannot_build_are_located(text: str, kind: str) -> None:
    problem = refused(text)
    assert (problem.code, problem.line, problem.column) == ("yaml.bad-value", 1, 4)
    assert f"as a {kind}" in problem.message


def test_a_document_over_the_size_limit_is_refused_before_parsing() -> None:
    text = "a: [" + "1, " * (MAX_DOCUMENT_BYTES // 3) + "1]\n"
    problem = refused(text)
    assert (problem.code, problem.line, problem.column) == ("limit.size", 1, MAX_DOCUMENT_BYTES + 1)
    assert f"{MAX_DOCUMENT_BYTES:,}" in problem.message
    # Size is counted in bytes: 400,000 three-byte characters are 1.2 MB.
    assert refused("a: " + "€" * 400_000).code == "limit.size"


def test_a_file_over_the_size_limit_is_not_read_whole(tmp_path: Path) -> None:
    spec = tmp_path / "big.yaml"
    spec.write_bytes(b"a: 1\n" + b"#" * (4 * MAX_DOCUMENT_BYTES))
    with pytest.raises(SpecInvalid) as info:
        read(spec)
    (problem,) = info.value.diagnostics
    assert (problem.code, problem.source) == ("limit.size", str(spec))
    assert f"{4 * MAX_DOCUMENT_BYTES + 5:,} bytes" in problem.message


@pytest.mark.parametrize(("text", "code", "pointer"), [
    ("nodes:\n" + "".join(f"  n{i}: {{type: transport.text}}\n" for i in range(MAX_NODES + 1)),
     "limit.nodes", f"/nodes/n{MAX_NODES}"),
    ("edges:\n" + "".join(f"  - a{i} -> b{i}\n" for i in range(MAX_EDGES + 1)),
     "limit.edges", f"/edges/{MAX_EDGES}"),
    ("edges: [" + " -> ".join(f"n{i}" for i in range(MAX_EDGES + 2)) + "]\n",
     "limit.edges", "/edges/0"),
    ("nodes:\n  llm:\n    tools: [" + ", ".join(f"t{i}" for i in range(500)) + "]\n",
     "limit.tools", f"/nodes/llm/tools/{MAX_TOOLS_PER_MODEL}"),
])
def test_counts_are_refused_while_reading(text: str, code: str, pointer: str) -> None:
    problem = refused(text)
    assert (problem.code, problem.pointer) == (code, pointer)
