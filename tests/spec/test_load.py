"""Loading: positions for every key and value, JSON input, and `${VAR}` interpolation."""

from __future__ import annotations

import pytest

from flowspec.errors import SpecInvalid
from flowspec.spec.load import interpolate, parse

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
