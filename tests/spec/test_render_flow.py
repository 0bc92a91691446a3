"""Drawing a flow: every state, every way out labelled by the call that takes it, start and end."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from flowspec.spec.compile import compile_file, compile_text
from flowspec.spec.compiled import CompiledGraph
from flowspec.spec.render_flow import to_dot, to_mermaid

ROOT = Path(__file__).resolve().parents[2]
BOOKING = ROOT / "specs" / "restaurant-booking.yaml"

BOOKING_MERMAID = """\
stateDiagram-v2
  %% restaurant-booking v1 ({hash})
  [*] --> greet
  greet --> collect: wants_booking
  collect --> confirm: check_availability: available
  collect --> collect: check_availability: full
  confirm --> done: confirmed
  confirm --> collect: change_booking
  done --> [*]: end_call
"""

BOOKING_DOT = """\
digraph "restaurant-booking" {
  rankdir=LR;
  node [shape=box, style=rounded, fontname="Helvetica"];
  edge [fontname="Helvetica"];
  "*start" [shape=point, label=""];
  "*end" [shape=doublecircle, label="", width=0.15];
  "greet" [label="greet"];
  "collect" [label="collect"];
  "confirm" [label="confirm"];
  "done" [label="done", peripheries=2];
  "*start" -> "greet";
  "greet" -> "collect" [label="wants_booking"];
  "collect" -> "confirm" [label="check_availability: available"];
  "collect" -> "collect" [label="check_availability: full"];
  "confirm" -> "done" [label="confirmed"];
  "confirm" -> "collect" [label="change_booking"];
  "done" -> "*end" [label="end_call"];
}
"""

# Names Mermaid cannot take bare, a case value with spaces, a default, a final state that does
# not hang up, and a `to:` transition.
ODD = """\
flowspec: 1
name: odd
nodes:
  caller: {type: transport.websocket}
  host: {type: openai.realtime, tools: [lookup]}
  lookup:
    type: tool.python
    handler: flowspec.examples.booking:check_availability
    description: Look it up.
    parameters: {type: object, properties: {}}
edges:
  - caller -> host -> caller
flow:
  initial: start-here
  states:
    start-here:
      instructions: Look it up.
      tools: [lookup]
      transitions:
        lookup:
          on: result.status
          cases: {"not found": start_here, found: wrap-up}
          default: start-here
    start_here:
      instructions: Again.
      functions:
        go_on: {description: Go on.}
      transitions:
        go_on: {to: wrap-up}
    wrap-up:
      instructions: Bye.
      final: true
"""


def compiled(path: Path) -> CompiledGraph:
    report = compile_file(path, env={})
    assert report.graph is not None, report.diagnostics
    return report.graph


def odd() -> CompiledGraph:
    report = compile_text(ODD, "odd.yaml", env={})
    assert report.graph is not None, report.diagnostics
    return report.graph


def test_the_booking_flow_in_mermaid() -> None:
    graph = compiled(BOOKING)
    assert to_mermaid(graph) == BOOKING_MERMAID.format(hash=graph.content_hash)


def test_the_booking_flow_in_dot() -> None:
    assert to_dot(compiled(BOOKING)) == BOOKING_DOT


def test_mermaid_aliases_names_it_cannot_take_bare() -> None:
    assert to_mermaid(odd()).splitlines()[2:] == [
        '  state "start-here" as start_here_2',
        '  state "wrap-up" as wrap_up',
        "  [*] --> start_here_2",
        "  start_here_2 --> start_here: lookup: not found",
        "  start_here_2 --> wrap_up: lookup: found",
        "  start_here_2 --> start_here_2: lookup: default",
        "  start_here --> wrap_up: go_on",
        "  wrap_up --> [*]",
    ]


MERMAID_LINE = re.compile(
    r'^  (?:state "[^"]+" as \w+|%% .*|(\[\*\]|\w+) --> (\[\*\]|\w+)(?:: [^\n;]+)?)$')


@pytest.mark.parametrize("graph", [compiled(BOOKING), odd()], ids=["booking", "odd"])
def test_every_mermaid_line_is_a_statement(graph: CompiledGraph) -> None:
    lines = to_mermaid(graph).splitlines()
    assert lines[0] == "stateDiagram-v2"
    for line in lines[1:]:
        assert MERMAID_LINE.match(line), line


@pytest.mark.parametrize("graph", [compiled(BOOKING), odd()], ids=["booking", "odd"])
def test_graphviz_reads_the_dot(graph: CompiledGraph) -> None:
    dot = shutil.which("dot")
    assert dot, "Graphviz's dot is needed to check the drawing (apt-get install graphviz)"
    out = subprocess.run([dot, "-Tjson"], input=to_dot(graph), capture_output=True,
                         text=True, check=True, timeout=30)
    drawn = json.loads(out.stdout)
    names = [o["name"] for o in drawn["objects"]]
    flow = graph.spec.flow
    assert flow is not None
    assert sorted(names) == sorted(["*start", "*end", *flow.states])
    edges = {(names[e["tail"]], names[e["head"]], e.get("label", "")) for e in drawn["edges"]}
    assert ("*start", flow.initial, "") in edges
    if graph.name == "odd":
        assert ("start-here", "start_here", "lookup: not found") in edges
        assert ("wrap-up", "*end", "") in edges
        assert len(edges) == 6


def test_a_spec_without_a_flow_cannot_be_drawn_as_one() -> None:
    with pytest.raises(ValueError, match="no flow"):
        to_mermaid(compiled(ROOT / "specs" / "phone-agent.yaml"))
