"""A flow's states and tools complete from the per-document schema (`flowspec schema --for`),
asked of the real yaml-language-server."""

from __future__ import annotations

from pathlib import Path

import pytest

from flowspec.cli import main

from .conftest import ROOT
from .lsp import LanguageServer, cursor

SPEC = """\
flowspec: 1
name: booking
nodes:
  caller: {{type: transport.websocket}}
  host: {{type: openai.realtime, tools: [check_availability, take_note]}}
  check_availability:
    type: tool.python
    handler: flowspec.examples.booking:check_availability
    description: Whether a table is free.
  take_note:
    type: tool.python
    handler: flowspec.examples.booking:check_availability
    description: Writes a note for the staff.
edges:
  - caller -> host -> caller
flow:
  initial: {initial}
  global_tools: [{global_tools}]
  states:
    greet:
      instructions: Find out whether the caller wants to book a table.
      functions:
        wants_booking: {{description: The caller wants to book.}}
      transitions:
        wants_booking: {plain}
    collect:
      instructions: Ask for the party size and time.
      tools: [{tools}]
      transitions:
        check_availability:
          on: result.status
          cases:
            available: {case}
          default: {default}
    confirm-booking:
      instructions: Read the booking back.
      functions:
        confirmed: {{description: Confirmed.}}
      transitions:
        confirmed: {{to: {to}}}
    done:
      instructions: Thank the caller.
      final: true
"""
FILLED = {"initial": "greet", "global_tools": "take_note", "plain": "collect",
          "tools": "check_availability", "case": "confirm-booking", "default": "collect",
          "to": "done"}
STATES = {"greet", "collect", "confirm-booking", "done"}


def specialised(tmp: Path, name: str, **holes: str) -> tuple[Path, str]:
    """The spec with `holes` filled in (one of them the cursor), its schema written as a user
    would (`flowspec schema --for`) and the modeline pointing at it."""
    text = SPEC.format(**{**FILLED, **holes})
    spec = tmp / f"flow-{name}.yaml"
    spec.write_text(cursor(text)[0] if "<|>" in text else text)
    schema = tmp / ".flowspec" / f"flow-{name}.schema.json"
    assert main(["schema", "--for", str(spec), "-o", str(schema)]) == 0
    return spec, f"# yaml-language-server: $schema=./.flowspec/flow-{name}.schema.json\n" + text


def labels(server: LanguageServer, path: Path, text: str) -> dict[str, str]:
    body, line, character = cursor(text)
    items = server.completion(server.open(path, body), line, character)
    return {str(i["label"]): str((i.get("documentation") or {"value": ""})["value"]
                                 if isinstance(i.get("documentation"), dict)
                                 else i.get("documentation", "")) for i in items}


def test_initial_completes_to_the_flows_states(server: LanguageServer, workspace: Path) -> None:
    path, text = specialised(workspace, "initial", initial="<|>")
    items = labels(server, path, text)
    assert STATES <= set(items)
    assert items["greet"] == "Find out whether the caller wants to book a table."
    assert items["done"] == "(final) Thank the caller."
    assert "check_availability" not in items and "host" not in items


@pytest.mark.parametrize("hole", ["plain", "case", "default", "to"])
def test_transition_targets_complete_to_the_flows_states(server: LanguageServer,
                                                         workspace: Path, hole: str) -> None:
    path, text = specialised(workspace, f"target-{hole}", **{hole: "<|>"})
    assert STATES <= set(labels(server, path, text))


@pytest.mark.parametrize("hole", ["tools", "global_tools"])
def test_state_and_global_tools_complete_to_the_specs_tool_nodes(
        server: LanguageServer, workspace: Path, hole: str) -> None:
    path, text = specialised(workspace, f"tools-{hole}", **{hole: "<|>"})
    items = labels(server, path, text)
    assert {"check_availability", "take_note"} <= set(items)
    assert items["take_note"] == "Writes a note for the staff."
    assert not STATES & set(items)


def test_a_misspelt_state_is_flagged_on_its_line(server: LanguageServer,
                                                 workspace: Path) -> None:
    path, text = specialised(workspace, "stale", case="confirm_booking")
    found = server.diagnostics(server.open(path, text))
    # Zero-based with the modeline as line 0: `available: confirm_booking` is line 33.
    assert [d["range"]["start"]["line"] for d in found] == [33]
    assert "confirm-booking" in found[0]["message"]


def test_the_example_flow_validates_against_its_own_schema(server: LanguageServer,
                                                          workspace: Path) -> None:
    source = ROOT / "specs" / "restaurant-booking.yaml"
    spec = workspace / "restaurant-booking.yaml"
    spec.write_text(source.read_text())
    schema = workspace / ".flowspec" / "restaurant-booking.schema.json"
    assert main(["schema", "--for", str(spec), "-o", str(schema)]) == 0
    text = "# yaml-language-server: $schema=./.flowspec/restaurant-booking.schema.json\n" + \
        source.read_text().split("\n", 1)[1]
    assert server.diagnostics(server.open(spec, text)) == []
