"""The bounds on plain data (what the admin API hands `compile_document`), and that every stage
after loading copes with documents at the limits."""

from __future__ import annotations

import inspect
import sys
from typing import Any

import pytest

from flowspec.limits import (
    MAX_DEPTH,
    MAX_EDGES,
    MAX_NODES,
    MAX_NUMBER_DIGITS,
    MAX_TOOLS_PER_MODEL,
)
from flowspec.spec.compile import check_data_limits, compile_document, compile_text
from flowspec.spec.load import Document, parse


def nested(levels: int, leaf: Any = 1) -> Any:
    value = leaf
    for _ in range(levels):
        value = {"a": value}
    return value


def spec(**nodes: Any) -> dict[str, Any]:
    return {"flowspec": 1, "name": "t",
            "nodes": {"chat": {"type": "transport.text"}, "llm": {"type": "openai.responses"},
                      **nodes},
            "edges": ["chat -> llm -> chat"]}


def codes(data: Any) -> list[tuple[str, str]]:
    return [(d.code, d.pointer) for d in check_data_limits(data, "api")]


def test_data_within_the_bounds_passes() -> None:
    assert codes(spec(extra={"type": "transport.text", "x": nested(MAX_DEPTH - 3)})) == []
    assert codes([int("9" * MAX_NUMBER_DIGITS), -int("9" * (MAX_NUMBER_DIGITS - 1))]) == []


def test_deep_data_is_refused_once_without_recursion() -> None:
    data = nested(100_000)
    assert codes(data) == [("limit.depth", "/a" * MAX_DEPTH)]
    deep_list: Any = []
    for _ in range(MAX_DEPTH):
        deep_list = [deep_list]
    assert codes(deep_list) == [("limit.depth", "/0" * MAX_DEPTH)]


def test_long_integers_are_refused_without_converting_them_to_text() -> None:
    huge = 10 ** 10_000  # str() of it would fail beyond 4,300 digits
    found = check_data_limits({"a": [1, huge], "b": -(10 ** MAX_NUMBER_DIGITS)}, "api")
    assert sorted((d.code, d.pointer) for d in found) == [("limit.digits", "/a/1"),
                                                          ("limit.digits", "/b")]
    assert "10,001 characters" in next(d.message for d in found if d.pointer == "/a/1")
    assert codes({"flag": True, "x": 1.5e300}) == []


def test_node_edge_and_tool_counts_are_refused() -> None:
    many = {f"n{i}": {"type": "transport.text"} for i in range(MAX_NODES + 1)}
    assert codes({"nodes": many}) == [("limit.nodes", "/nodes")]
    edges = ["a -> b"] * MAX_EDGES + [{"from": "a", "to": "b"}]
    assert codes({"edges": edges}) == [("limit.edges", f"/edges/{MAX_EDGES}")]
    chain = " -> ".join(f"n{i}" for i in range(MAX_EDGES + 2))
    assert codes({"edges": [chain]}) == [("limit.edges", "/edges/0")]
    tools = spec(llm={"type": "openai.responses", "tools": [f"t{i}" for i in range(500)]})
    assert codes(tools) == [("limit.tools", "/nodes/llm/tools")]
    assert codes(spec(llm={"type": "openai.responses",
                           "tools": ["t"] * MAX_TOOLS_PER_MODEL})) == []


def test_compile_document_checks_the_bounds_before_anything_else() -> None:
    data = spec(**{f"n{i}": {"type": "transport.text"} for i in range(10_000)})
    report = compile_document(Document(data=data, source="api"))
    assert [(d.code, d.pointer, d.line) for d in report.diagnostics] == [
        ("limit.nodes", "/nodes", None)]
    assert report.graph is None
    deep = compile_document(Document(data=spec(extra=nested(100_000)), source="api"))
    assert [d.code for d in deep.diagnostics] == ["limit.depth"]
    digits = compile_document(Document(data={**spec(), "flowspec": 10 ** 5000}, source="api"))
    assert [(d.code, d.pointer) for d in digits.diagnostics] == [("limit.digits", "/flowspec")]


BASE = """\
flowspec: 1
name: t
nodes:
  caller: {{type: transport.websocket}}
  llm: {{type: openai.realtime, tools: [lookup], extra: {{e: {extra}}}}}
  lookup:
    type: tool.python
    handler: flowspec.examples.weather:get_weather
    description: d
    parameters: {{type: object, properties: {{p: {parameters}}}}}
edges:
  - caller -> llm -> caller
"""


@pytest.mark.parametrize(("opening", "closing"), [
    ("{items: ", "}"), ("{not: ", "}"), ("{properties: {a: ", "}}"), ("{anyOf: [", "]}")])
def test_documents_at_the_depth_limit_compile_without_recursion_errors(opening: str,
                                                                        closing: str) -> None:
    # `parameters` is a JSON Schema, itself checked against the metaschema, recursively.
    levels = (MAX_DEPTH - 6) // (opening.count("{") + opening.count("["))
    parameters = opening * levels + "{}" + closing * levels
    extra = "{a: " * (MAX_DEPTH - 5) + "1" + "}" * (MAX_DEPTH - 5)
    report = compile_text(BASE.format(extra=extra, parameters=parameters), "deep.yaml")
    assert report.ok, report.diagnostics


def test_a_caller_short_of_stack_gets_a_report_not_a_recursion_error() -> None:
    extra = "{a: " * (MAX_DEPTH - 5) + "1" + "}" * (MAX_DEPTH - 5)
    doc = parse(BASE.format(extra=extra, parameters="{}"), "deep.yaml")
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(len(inspect.stack(0)) + 150)  # as if called from deep inside a caller
    try:
        report = compile_document(doc)
    finally:
        sys.setrecursionlimit(limit)
    assert [(d.code, d.line) for d in report.errors] == [("limit.depth", 1)]
    assert report.graph is None
