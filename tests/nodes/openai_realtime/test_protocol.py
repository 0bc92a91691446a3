"""Session payloads of both dialects: NOT_GIVEN, false → null, instructions, tools, extra; each
checked against the openai SDK's own models, including fields the SDK would silently accept."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from openai.types.beta.realtime import SessionUpdateEvent as BetaSessionUpdateEvent
from openai.types.realtime import SessionUpdateEvent
from pydantic import BaseModel

from flowspec.nodes.openai_realtime import protocol, protocol_beta
from flowspec.nodes.tool_defs import tool_definitions
from flowspec.spec.compile import compile_file, compile_text
from flowspec.spec.models.realtime import RealtimeNodeSpec
from flowspec.spec.models.realtime_beta import RealtimeBetaNodeSpec

ROOT = Path(__file__).resolve().parents[3]


def unknown_fields(model: BaseModel, path: str = "") -> list[str]:
    """Fields the SDK model does not declare (its models accept them silently)."""
    found = [f"{path}.{k}" for k in (model.__pydantic_extra__ or {})]
    for name in type(model).model_fields:
        value = getattr(model, name)
        values = value if isinstance(value, list) else [value]
        for item in values:
            if isinstance(item, BaseModel):
                found.extend(unknown_fields(item, f"{path}.{name}"))
    return found


def ga_payload(text: str) -> dict[str, Any]:
    graph = compile_text(text, env={}).raise_for_errors()
    llm = graph.nodes["llm"]
    assert isinstance(llm, RealtimeNodeSpec)
    tools = tool_definitions(graph.tools["llm"], graph.nodes, "realtime")
    return protocol.session_payload(llm.effective_settings(), tools=tools, extra=llm.extra)


GA = """\
flowspec: 1
name: t
nodes:
  caller: {type: transport.websocket}
  llm:
    type: openai.realtime
    tools: [t1]
    extra: {tracing: auto}
    settings:
      system_instruction: Be brief.
      session_properties:
        instructions: ignored
        output_modalities: [audio]
        audio:
          input: {turn_detection: false, transcription: {model: whisper-1}, noise_reduction: false}
          output: {voice: marin}
  t1:
    type: tool.python
    handler: flowspec.examples.weather:get_weather
    description: Weather.
    parameters: {type: object, properties: {location: {type: string}}}
edges: [caller -> llm -> caller]
"""


def test_ga_payload_sends_only_what_the_spec_says() -> None:
    session = ga_payload(GA)
    assert session == {
        "type": "realtime",
        "output_modalities": ["audio"],
        "instructions": "Be brief.",
        "audio": {
            "input": {"turn_detection": None, "transcription": {"model": "whisper-1"},
                      "noise_reduction": None},
            "output": {"voice": "marin"},
        },
        "tools": [{"type": "function", "name": "t1", "description": "Weather.",
                   "parameters": {"type": "object",
                                  "properties": {"location": {"type": "string"}}}}],
        "tracing": "auto",
    }
    event = SessionUpdateEvent.model_validate(protocol.session_update(session))
    assert unknown_fields(event) == []


def test_minimal_spec_sends_only_the_type() -> None:
    session = ga_payload(GA.split("    tools: [t1]")[0] + "edges: [caller -> llm -> caller]\n")
    assert session == {"type": "realtime"}


def test_reasoning_is_stripped_for_models_that_cannot_use_it() -> None:
    text = GA.replace("      system_instruction: Be brief.\n",
                      "      system_instruction: Be brief.\n      model: gpt-realtime-1.5\n")
    text = text.replace("        output_modalities: [audio]\n",
                        "        output_modalities: [audio]\n        reasoning: {effort: low}\n")
    assert "reasoning" not in ga_payload(text)
    assert ga_payload(text.replace("gpt-realtime-1.5", "gpt-realtime-2"))["reasoning"] == {
        "effort": "low"}


@pytest.mark.parametrize("name", ["voice-assistant.yaml", "phone-agent.yaml"])
def test_example_payloads_validate_against_the_sdk(name: str) -> None:
    graph = compile_file(ROOT / "specs" / name, env={}).raise_for_errors()
    for node_id, node in graph.nodes.items():
        if isinstance(node, RealtimeNodeSpec):
            tools = tool_definitions(graph.tools[node_id], graph.nodes, "realtime")
            session = protocol.session_payload(node.effective_settings(), tools=tools)
            event = SessionUpdateEvent.model_validate(protocol.session_update(session))
            assert unknown_fields(event) == []


def test_beta_payload_is_flat_and_validates() -> None:
    graph = compile_file(ROOT / "specs" / "legacy-beta.yaml", env={}).raise_for_errors()
    llm = graph.nodes["llm"]
    assert isinstance(llm, RealtimeBetaNodeSpec)
    session = protocol_beta.session_payload(llm.effective_settings())
    assert "type" not in session and session["voice"] == "alloy"
    assert session["instructions"] == "You are a helpful assistant."
    assert session["turn_detection"] == {"type": "server_vad", "silence_duration_ms": 800}
    event = BetaSessionUpdateEvent.model_validate(protocol.session_update(session))
    assert unknown_fields(event) == []


def test_beta_turn_detection_off_is_null_and_node_level_properties_count() -> None:
    graph = compile_text("""\
flowspec: 1
name: t
nodes:
  caller: {type: transport.websocket}
  llm:
    type: openai.realtime_beta
    base_url: ws://127.0.0.1:9/v1/realtime
    session_properties: {turn_detection: false, input_audio_transcription: false}
edges: [caller -> llm -> caller]
""", env={}).raise_for_errors()
    llm = graph.nodes["llm"]
    assert isinstance(llm, RealtimeBetaNodeSpec)
    session = protocol_beta.session_payload(llm.effective_settings())
    assert session == {"turn_detection": None, "input_audio_transcription": None}


def test_responses_tool_shape_carries_strict() -> None:
    graph = compile_file(ROOT / "specs" / "text-chat.yaml", env={}).raise_for_errors()
    (tool,) = tool_definitions(graph.tools["llm"], graph.nodes, "responses")
    assert tool["strict"] is False and tool["name"] == "get_weather"
    assert set(tool) == {"type", "name", "description", "parameters", "strict"}
