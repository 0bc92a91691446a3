"""Values the Realtime API refuses are refused by validate, each with what the API takes: token
limits, `tool_choice`, voices of the speech API, the beta dialect's temperature."""

from __future__ import annotations

import pytest

from flowspec.errors import Diagnostic
from flowspec.spec.compile import compile_text

GA = """\
flowspec: 1
name: t
nodes:
  caller: {{type: transport.websocket, audio: {{encoding: pcm16, sample_rate: 24000}}}}
  llm:
    type: openai.realtime
    tools: [lookup]
    settings:
      session_properties: {{{props}}}
  lookup:
    type: tool.python
    name: find_city
    handler: flowspec.examples.weather:get_weather
    description: d
    parameters: {{type: object}}
edges: [caller -> llm -> caller]
"""
BETA = """\
flowspec: 1
name: t
nodes:
  caller: {{type: transport.websocket, audio: {{encoding: pcm16, sample_rate: 24000}}}}
  llm:
    type: openai.realtime_beta
    base_url: ws://127.0.0.1:9/v1/realtime
    tools: [lookup]
    session_properties: {{{props}}}
  lookup:
    type: tool.python
    handler: flowspec.examples.weather:get_weather
    description: d
    parameters: {{type: object}}
edges: [caller -> llm -> caller]
"""


def errors(template: str, props: str) -> list[Diagnostic]:
    return compile_text(template.format(props=props), "t.yaml", env={}).errors


@pytest.mark.parametrize(("template", "field"), [
    (GA, "max_output_tokens"), (BETA, "max_response_output_tokens")])
def test_a_token_limit_is_1_to_4096_or_inf(template: str, field: str) -> None:
    for good in ("1", "4096", "inf"):
        assert not errors(template, f"{field}: {good}"), good
    for bad, bound in (("99999", "at most 4096"), ("0", "at least 1")):
        (found,) = errors(template, f"{field}: {bad}")
        assert found.pointer.endswith(f"/{field}") and bound in found.message, found
    (found,) = errors(template, f"{field}: lots")
    assert found.code == "schema.no-match" and '"inf"' in found.message


@pytest.mark.parametrize("template", [GA, BETA])
def test_tool_choice_is_a_mode_or_a_function_of_the_node(template: str) -> None:
    name = "find_city" if template is GA else "lookup"
    for good in ("auto", "none", "required", f"{{type: function, name: {name}}}",
                 "{type: function, name: end_call}"):
        assert not errors(template, f"tool_choice: {good}"), good
    (found,) = errors(template, "tool_choice: sometimes")
    assert found.pointer.endswith("/tool_choice")
    assert '"auto", "none", "required"' in found.message, found.message
    (found,) = errors(template, f"tool_choice: {{type: function, name: {name}x}}")
    assert found.code == "tool.choice-unknown" and found.pointer.endswith("/tool_choice/name")
    assert f"'{name}x'" in found.message and found.hint == f"did you mean '{name}'?"


def test_a_raw_function_tool_may_be_chosen_and_mcp_is_a_form_of_its_own() -> None:
    raw = "tools: [{type: function, name: raw_fn, parameters: {type: object}}], "
    assert not errors(GA, raw + "tool_choice: {type: function, name: raw_fn}")
    assert not errors(GA, "tool_choice: {type: mcp, server_label: docs, name: search}")
    (found,) = errors(GA, "tool_choice: {type: mcp}")
    assert found.code == "schema.missing-required"


@pytest.mark.parametrize("voice", ["fable", "onyx", "nova"])
def test_a_speech_voice_is_explained_with_the_realtime_voices(voice: str) -> None:
    (beta,) = errors(BETA, f"voice: {voice}")
    assert beta.code == "realtime.speech-voice"
    assert "text-to-speech voice" in beta.message and "not a Realtime voice" in beta.message
    assert "alloy, ash, ballad, coral, echo, sage, shimmer, verse" in beta.message
    assert "marin" not in beta.message  # GA only
    (ga,) = errors(GA, f"audio: {{output: {{voice: {voice}}}}}")
    assert ga.code == "realtime.speech-voice" and "marin, cedar" in ga.message
    # The speech node takes them.
    speech = compile_text(f"""\
flowspec: 1
name: t
nodes:
  caller: {{type: transport.websocket, audio: {{encoding: pcm16, sample_rate: 24000}}}}
  stt: {{type: openai.transcribe}}
  llm: {{type: openai.responses}}
  tts: {{type: openai.speech, settings: {{voice: {voice}}}}}
edges: [caller -> stt -> llm -> tts -> caller]
""", "t.yaml", env={})
    assert not speech.errors, [str(d) for d in speech.errors]


def test_a_beta_temperature_outside_what_the_api_takes_says_which_range_it_enforces() -> None:
    assert not errors(BETA, "temperature: 0.6") and not errors(BETA, "temperature: 1.2")
    for bad in ("0.2", "1.7"):
        (found,) = errors(BETA, f"temperature: {bad}")
        assert found.code == "schema.out-of-range" and found.pointer.endswith("/temperature")
        assert "refuses a temperature outside 0.6–1.2" in found.message
        assert "0–2 is the range of the Chat Completions and Responses APIs" in found.message
