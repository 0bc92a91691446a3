"""`flowspec graph --flow`: the spec's flow as a state machine, or a clear refusal."""

from __future__ import annotations

from pathlib import Path

import pytest

from flowspec.cli import main

ROOT = Path(__file__).resolve().parents[2]
BOOKING = str(ROOT / "specs" / "restaurant-booking.yaml")


def test_flow_draws_the_state_machine_in_mermaid(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["graph", "--flow", BOOKING]) == 0
    out = capsys.readouterr().out
    assert out.startswith("stateDiagram-v2\n")
    assert "  [*] --> greet\n" in out and "  done --> [*]: end_call\n" in out


def test_flow_draws_dot_with_format_dot(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["graph", "--flow", "--format", "dot", BOOKING]) == 0
    out = capsys.readouterr().out
    assert out.startswith('digraph "restaurant-booking" {')
    assert '"collect" -> "confirm" [label="check_availability: available"];' in out


def test_without_flow_the_node_graph_is_drawn(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["graph", BOOKING]) == 0
    assert capsys.readouterr().out.startswith("flowchart LR")


def test_a_spec_without_a_flow_is_exit_2_saying_so(capsys: pytest.CaptureFixture[str]) -> None:
    spec = str(ROOT / "specs" / "phone-agent.yaml")
    assert main(["graph", "--flow", spec]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == (f"flowspec graph: {spec} has no flow: section to draw; leave out "
                            "--flow to draw its nodes\n")


def test_an_invalid_flow_reports_its_errors(capsys: pytest.CaptureFixture[str]) -> None:
    broken = str(ROOT / "tests" / "spec" / "corpus" / "flow-unknown-initial.yaml")
    assert main(["graph", "--flow", broken]) == 1
    assert "flow.unknown-state" in capsys.readouterr().err
