"""Validation messages: hints, redaction of secrets, and many errors reported at once."""

from __future__ import annotations

from flowspec.spec.compile import compile_text

CANARY = "sk-canary-9f8e7d6c5b4a"


def codes_and_hints(text: str, env: dict[str, str] | None = None) -> dict[str, str | None]:
    report = compile_text(text, "t.yaml", env=env or {})
    return {d.pointer: d.hint for d in report.diagnostics}


def test_did_you_mean_for_keys_types_ids_and_enums() -> None:
    hints = codes_and_hints("""\
flowspec: 1
name: t
nodes:
  caller: {type: transport.websockt}
  llm:
    type: openai.responses
    setings: {}
    transport: websockets
""")
    assert hints["/nodes/caller/type"] == "did you mean 'transport.websocket'?"
    assert hints["/nodes/llm/setings"] == "did you mean 'settings'?"
    assert hints["/nodes/llm/transport"] == "did you mean 'websocket'?"
    ids = codes_and_hints("""\
flowspec: 1
name: t
nodes:
  chat: {type: transport.text}
  assistant: {type: openai.responses}
edges: [chat -> asistant -> chat]
""")
    assert ids["/edges/0"] == "did you mean 'assistant'?"


def test_secret_values_are_never_echoed() -> None:
    text = """\
flowspec: 1
name: t
nodes:
  chat: {type: transport.text}
  llm:
    type: openai.responses
    api_key: ${KEY}
    default_headers: {X-Token: 5}
    settings: {model: "${KEY}"}
edges: [chat -> llm -> chat]
"""
    report = compile_text(text, "t.yaml", env={"KEY": CANARY})
    shown = "\n".join(str(d) for d in report.diagnostics)
    assert report.errors  # the header value 5 is not a string
    assert CANARY not in shown
    (error,) = report.errors
    assert error.pointer == "/nodes/llm/default_headers/X-Token" and "5" not in error.message
    fixed = text.replace("${KEY}", CANARY, 1).replace("X-Token: 5", "X-Token: t")
    literal = compile_text(fixed, "t.yaml", env={"KEY": "x"})
    assert CANARY not in "\n".join(str(d) for d in literal.diagnostics)
    assert any(d.code == "secret.literal" for d in literal.diagnostics)


def test_interpolated_values_are_redacted_in_schema_errors() -> None:
    report = compile_text("""\
flowspec: 1
name: t
nodes:
  chat: {type: transport.text}
  llm: {type: openai.responses, transport: "${MODE}"}
edges: [chat -> llm -> chat]
""", "t.yaml", env={"MODE": CANARY})
    (error,) = report.errors
    assert error.code == "schema.bad-enum" and CANARY not in str(error)


def test_all_schema_errors_at_once_sorted_by_position() -> None:
    report = compile_text("""\
flowspec: 1
name: t
nodes:
  caller: {type: transport.websocket, audio: {sample_rate: 1}}
  llm:
    type: openai.realtime
    settings:
      session_properties:
        audio:
          input: {turn_detection: {type: semantic_vad, eagerness: fast}}
          output: {speed: 0}
  t: {type: tool.python, handler: "x:y"}
""", "t.yaml", env={})
    assert [(d.code, d.line) for d in report.errors] == [
        ("schema.bad-enum", 4),
        ("schema.bad-enum", 10),
        ("schema.out-of-range", 11),
        ("schema.missing-required", 12),
    ]


def test_valid_spec_compiles_to_graph() -> None:
    report = compile_text("""\
flowspec: 1
name: t
nodes:
  chat: {type: transport.text}
  llm: {type: openai.responses}
edges: [chat -> llm -> chat]
""", "t.yaml", env={})
    assert report.ok and report.graph is not None
    assert report.graph.entry == "chat"
    assert [str(e.source) + ">" + str(e.target) for e in report.graph.edges] == [
        "chat.out>llm.in", "llm.out>chat.in"]
