"""Every validate finding that says a field is not sent agrees with what the node sends: the
spec is compiled, and the same node's request is built by the code that writes it to the wire."""

from __future__ import annotations

import ast
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from flowspec.nodes.openai_realtime import protocol as realtime
from flowspec.nodes.openai_responses import protocol as responses
from flowspec.nodes.openai_speech import client as speech
from flowspec.nodes.openai_transcribe import protocol as transcribe
from flowspec.spec import rules
from flowspec.spec.compile import compile_text
from flowspec.spec.models.base import NodeSpec
from flowspec.spec.models.realtime import RealtimeNodeSpec
from flowspec.spec.models.responses import ResponsesNodeSpec
from flowspec.spec.models.speech import SpeechNodeSpec, TranscribeNodeSpec

SPEC = """\
flowspec: 1
name: t
nodes:
  caller: {{type: transport.websocket, audio: {{encoding: pcm16, sample_rate: 24000}}}}
{nodes}
edges: [{edges}]
"""
VOICE = "caller -> llm -> caller"
CASCADE = "caller -> stt -> llm -> tts -> caller"
CASCADE_NODES = """\
  stt: {type: openai.transcribe, settings: {model: gpt-4o-transcribe}}
  llm: {type: openai.responses}
  tts: {type: openai.speech}
"""


def realtime_wire(node: NodeSpec) -> dict[str, Any]:
    assert isinstance(node, RealtimeNodeSpec)
    return realtime.session_payload(node.effective_settings())


def responses_wire(node: NodeSpec) -> dict[str, Any]:
    assert isinstance(node, ResponsesNodeSpec)
    return responses.build_body(node, node.settings, [responses.user_message("hi")])


def transcribe_wire(node: NodeSpec) -> dict[str, Any]:
    assert isinstance(node, TranscribeNodeSpec)
    return transcribe.session(node.settings, node.extra)


def speech_wire(node: NodeSpec) -> dict[str, Any]:
    assert isinstance(node, SpeechNodeSpec)
    return speech.request_body(node, node.settings, "Hello.")


Wire = Callable[[NodeSpec], dict[str, Any]]
CASES: list[tuple[str, str, str, str, Wire]] = [
    ("provider.reasoning-unsupported", "llm", """\
  llm: {type: openai.realtime, settings: {model: gpt-realtime-1.5,
        session_properties: {reasoning: {effort: low}}}}
""", VOICE, realtime_wire),
    ("provider.prompt-unsupported", "llm", """\
  llm:
    type: openai.realtime
    settings:
      session_properties:
        audio: {input: {transcription: {model: gpt-realtime-whisper, prompt: Names}}}
""", VOICE, realtime_wire),
    ("provider.reasoning-unsupported", "llm", CASCADE_NODES.replace(
        "{type: openai.responses}",
        "{type: openai.responses, settings: {model: gpt-4.1, reasoning: {effort: low}}}"),
     CASCADE, responses_wire),
    ("provider.not-sent", "llm", CASCADE_NODES.replace(
        "{type: openai.responses}",
        "{type: openai.responses, settings: {frequency_penalty: 0.5, presence_penalty: 0.2,"
        " seed: 7}}"), CASCADE, responses_wire),
    ("provider.prompt-unsupported", "stt", CASCADE_NODES.replace(
        "{model: gpt-4o-transcribe}",
        "{model: gpt-realtime-whisper, prompt: Names, turn_detection: false}"),
     CASCADE, transcribe_wire),
    ("provider.instructions-unsupported", "tts", CASCADE_NODES.replace(
        "{type: openai.speech}",
        "{type: openai.speech, settings: {model: tts-1, instructions: Warmly.}}"),
     CASCADE, speech_wire),
]


def keys(value: Any, path: str = "") -> set[str]:
    """Every key of `value` as a JSON Pointer ending, e.g. `/audio/input/transcription/prompt`."""
    found: set[str] = set()
    if isinstance(value, dict):
        for key, item in value.items():
            found.add(f"{path}/{key}")
            found |= keys(item, f"{path}/{key}")
    return found


@pytest.mark.parametrize(("code", "node_id", "nodes", "edges", "wire"), CASES)
def test_a_field_validate_says_is_not_sent_is_not_on_the_wire(
        code: str, node_id: str, nodes: str, edges: str, wire: Wire) -> None:
    report = compile_text(SPEC.format(nodes=nodes, edges=edges), "t.yaml", env={})
    assert report.graph is not None, [str(d) for d in report.errors]
    findings = [d for d in report.diagnostics if d.code == code]
    assert findings, [str(d) for d in report.diagnostics]
    sent = keys(wire(report.graph.nodes[node_id]))
    for finding in findings:
        assert "not sent" in finding.message or "not be sent" in finding.message
        # /nodes/llm/settings/session_properties/audio/... → the field's own name and parents
        field = finding.pointer.rsplit("/", 1)[1]
        on_wire = [k for k in sent if k.endswith(f"/{field}")]
        assert not on_wire, f"{finding} but the request holds {on_wire}"


def test_without_the_finding_the_field_is_sent() -> None:
    """The same fields where the model takes them: the check above can fail."""
    cases = [
        (CASES[0][2].replace("gpt-realtime-1.5", "gpt-realtime-2"), VOICE, realtime_wire,
         "/reasoning"),
        (CASES[1][2].replace("gpt-realtime-whisper", "gpt-4o-transcribe"), VOICE, realtime_wire,
         "/audio/input/transcription/prompt"),
        (CASES[2][2].replace("gpt-4.1", "gpt-5"), CASCADE, responses_wire, "/reasoning"),
        (CASES[4][2].replace("gpt-realtime-whisper", "gpt-4o-transcribe"), CASCADE,
         transcribe_wire, "/prompt"),
        (CASES[5][2].replace("tts-1", "gpt-4o-mini-tts"), CASCADE, speech_wire,
         "/instructions"),
    ]
    for nodes, edges, wire, field in cases:
        report = compile_text(SPEC.format(nodes=nodes, edges=edges), "t.yaml", env={})
        assert report.graph is not None, [str(d) for d in report.errors]
        assert not [d for d in report.diagnostics if "sent" in d.message]
        node_id = "llm" if wire in (realtime_wire, responses_wire) else \
            "stt" if wire is transcribe_wire else "tts"
        assert any(k.endswith(field) for k in keys(wire(report.graph.nodes[node_id]))), field


def not_sent_codes() -> set[str]:
    """The codes of every rule whose message says a field is not sent, read from the rules'
    source so that a new such rule needs a case above."""
    tree = ast.parse(Path(rules.__file__).read_text())
    codes: set[str] = set()
    for call in ast.walk(tree):
        if not isinstance(call, ast.Call) or len(call.args) < 3:
            continue
        code, message = call.args[1], call.args[2]
        if isinstance(call.func, ast.Attribute) and call.func.attr == "diagnostic":
            code, message = call.args[0], call.args[1]
        text = " ".join(c.value for c in ast.walk(message)
                        if isinstance(c, ast.Constant) and isinstance(c.value, str))
        if isinstance(code, ast.Constant) and ("not sent" in text or "not be sent" in text):
            codes.add(str(code.value))
    return codes


def test_every_rule_that_says_not_sent_has_a_wire_case() -> None:
    codes = not_sent_codes()
    assert "provider.not-sent" in codes and "provider.reasoning-unsupported" in codes
    assert codes == {case[0] for case in CASES}
