"""The example plugin (examples/plugin/, `text.redact`) works wherever a built-in node does:
validation with its own rules, the schemas, the fast reload validator, plans, sessions and
`flowspec nodes`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from flowspec_redact.node import redact
from flowspec_redact.spec import RedactSpec

from flowspec.cli import main
from flowspec.frames import ResponseEndedFrame, TextFrame, TranscriptFrame
from flowspec.spec.compile import compile_file, compile_text
from flowspec.spec.docschema import document_schema
from flowspec.spec.load import parse
from flowspec.testing import graph, run_graph

ROOT = Path(__file__).resolve().parents[2]
SPEC = ROOT / "examples" / "plugin" / "redact-chat.yaml"

REDACTING = """\
flowspec: 1
name: t
nodes:
  chat:
    type: transport.text
  llm:
    type: openai.responses
  redact:
    type: text.redact
    mask: "{mask}"
    keep_last: {keep_last}
edges:
  - chat -> llm -> redact -> chat
"""


@pytest.mark.parametrize(("text", "keep_last", "expected"), [
    ("card 4111 1111 1111 1234, thanks", 4, "card #### #### #### 1234, thanks"),
    ("call 555-0100 or 555.0199", 0, "call ###-#### or ###.####"),
    ("room 12", 4, "room 12"),
    ("no digits here", 0, "no digits here"),
])
def test_redact_masks_the_digits_of_each_number(text: str, keep_last: int,
                                                expected: str) -> None:
    assert redact(text, "#", keep_last) == expected


def test_the_example_spec_validates_with_its_node_typed_and_ported() -> None:
    report = compile_file(SPEC)
    assert report.ok and not report.diagnostics, [str(d) for d in report.diagnostics]
    assert report.graph is not None
    node = report.graph.nodes["redact"]
    assert isinstance(node, RedactSpec) and node.keep_last == 4
    assert {(e.source.node, e.target.node) for e in report.graph.edges} >= \
        {("llm", "redact"), ("redact", "chat")}


def test_the_plugins_schema_and_rules_are_applied_with_locations() -> None:
    report = compile_text(REDACTING.format(mask="7", keep_last=0), "bot.yaml")
    (warning,) = report.diagnostics
    assert str(warning).startswith("bot.yaml:10:11 /nodes/redact/mask: warning: mask '7' is a "
                                   "digit")
    assert warning.code == "redact.digit-mask"
    report = compile_text(REDACTING.format(mask="#", keep_last=99), "bot.yaml")
    assert [(d.code, d.pointer, d.line) for d in report.errors] == \
        [("schema.out-of-range", "/nodes/redact/keep_last", 11)]
    report = compile_text(REDACTING.format(mask="#", keep_last=0).replace("mask:", "masc:"))
    assert report.errors[0].hint == "did you mean 'mask'?"


def test_the_fast_reload_validator_knows_the_plugin_type() -> None:
    from flowspec.reload.quick import compile_valid

    data = parse(REDACTING.format(mask="#", keep_last=2), "t.yaml").data
    compiled = compile_valid(data, "t.yaml", {}, 2)
    assert compiled is not None and isinstance(compiled.nodes["redact"], RedactSpec)
    data["nodes"]["redact"]["keep_last"] = -1
    assert compile_valid(data, "t.yaml", {}, 3) is None


def test_the_per_document_schema_offers_the_plugin_nodes_ports() -> None:
    schema = document_schema(parse(SPEC.read_text(), str(SPEC)).data, SPEC.name)
    edge = schema["definitions"]["EdgeObjectSpec"]["properties"]
    assert "redact" in edge["from"]["enum"] and "redact.in" in edge["to"]["enum"]
    described = dict(zip(edge["to"]["enum"], edge["to"]["enumDescriptions"], strict=True))
    assert described["redact"] == "in port `in` of `redact` (text.redact): text, transcript"


async def test_the_plugin_node_runs_in_a_session() -> None:
    compiled = graph({"src": "test.passthrough",
                      "redact": RedactSpec(type="text.redact", keep_last=4),
                      "sink": "test.recorder"}, ["src -> redact -> sink"])
    run = await run_graph(compiled, [
        ("src", TextFrame(text="Your card 4111 1111 1111 1234 is on file.")),
        ("src", TranscriptFrame(text="my number is 555 0100", role="user", final=True)),
        ("src", ResponseEndedFrame()),
    ])
    assert [f.text for f in run.frames("sink", TextFrame)] == \
        ["Your card #### #### #### 1234 is on file."]
    assert [f.text for f in run.frames("sink", TranscriptFrame)] == ["my number is ### 0100"]
    assert len(run.frames("sink", ResponseEndedFrame)) == 1  # other frames pass through


async def test_a_number_split_across_streamed_deltas_keeps_only_its_last_digits() -> None:
    compiled = graph({"src": "test.passthrough",
                      "redact": RedactSpec(type="text.redact", keep_last=4),
                      "sink": "test.recorder"}, ["src -> redact -> sink"])
    deltas = ["Card 4111 11", "11 1111 12", "34 and room 2", "01", "."]
    run = await run_graph(compiled, [
        *(("src", TextFrame(text=d, item_id="a")) for d in deltas),
        ("src", TextFrame(text="PIN 1234", item_id="b")),
        ("src", ResponseEndedFrame()),
    ])
    texts = [f.text for f in run.frames("sink", TextFrame)]
    assert "".join(texts) == "Card #### #### #### 1234 and room 201.PIN 1234"
    by_item = {item: "".join(f.text for f in run.frames("sink", TextFrame) if f.item_id == item)
               for item in ("a", "b")}
    assert by_item == {"a": "Card #### #### #### 1234 and room 201.", "b": "PIN 1234"}
    assert isinstance(run.received["sink"][-1], ResponseEndedFrame)  # after the held text


def test_flowspec_chat_runs_the_plugin_node_between_model_and_caller() -> None:
    env = {k: v for k, v in os.environ.items() if k != "OPENAI_API_KEY"}
    result = subprocess.run([sys.executable, "-m", "flowspec.cli", "chat", str(SPEC)],
                            input="my card is 4111 1111 1111 1234\n", capture_output=True,
                            text=True, cwd=ROOT, env=env, timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    assert "bot: You said: my card is #### #### #### 1234" in result.stdout


def test_flowspec_nodes_lists_the_plugin_type(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["nodes", "--format", "json"]) == 0
    listing = json.loads(capsys.readouterr().out)
    node = next(n for n in listing["nodes"] if n["type"] == "text.redact")
    assert node | {"ports": None} == {
        "type": "text.redact", "family": "text.redact", "package": "flowspec-redact",
        "version": "0.1.0", "kind": "text", "live": False, "emulated": False, "ports": None,
        "description": "Masks the digits of numbers (card, phone, account numbers) in the text "
                       "and transcripts"}
    assert [(p["name"], p["direction"], p["kinds"]) for p in node["ports"]] == \
        [("in", "in", ["text", "transcript"]), ("out", "out", ["text", "transcript"])]
    assert main(["nodes"]) == 0
    row = next(line for line in capsys.readouterr().out.splitlines()
               if line.startswith("text.redact"))
    assert "flowspec-redact 0.1.0" in row and "←in text,transcript" in row


def test_a_plan_sends_a_plugin_nodes_change_to_new_sessions(tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]
                                                            ) -> None:
    old, new = tmp_path / "old.yaml", tmp_path / "new.yaml"
    old.write_text(REDACTING.format(mask="#", keep_last=0))
    new.write_text(REDACTING.format(mask="#", keep_last=4))
    assert main(["plan", str(old), str(new), "--format", "json"]) == 0
    (change,) = json.loads(capsys.readouterr().out)["changes"]
    assert (change["pointer"], change["applies"]) == ("/nodes/redact/keep_last", "new_sessions")
