"""Graph compilation: converters, round trips that are not cycles, tool links, hashes."""

from __future__ import annotations

from pathlib import Path

from flowspec.spec.compile import compile_file, compile_text
from flowspec.spec.models.audio import AudioConvertSpec

ROOT = Path(__file__).resolve().parents[2]


def test_phone_agent_gets_a_converter_each_way() -> None:
    graph = compile_file(ROOT / "specs" / "phone-agent.yaml", env={}).raise_for_errors()
    assert graph.inserted == {"phone_to_agent_convert", "agent_to_phone_convert"}
    inbound = graph.nodes["phone_to_agent_convert"]
    assert isinstance(inbound, AudioConvertSpec)
    assert (inbound.input.encoding, inbound.input.sample_rate) == ("pcmu", 8000)
    assert (inbound.output.encoding, inbound.output.sample_rate) == ("pcm16", 24000)
    routes = {(str(e.source), str(e.target)) for e in graph.edges}
    assert ("phone.out", "phone_to_agent_convert.in") in routes
    assert ("phone_to_agent_convert.out", "agent.in") in routes
    assert ("agent_to_phone_convert.out", "phone.in") in routes
    assert all(e.inserted for e in graph.edges if "convert" in str(e.source) + str(e.target))
    assert graph.tools == {"agent": ("get_weather",)}


def test_matching_formats_need_no_converter() -> None:
    text = """\
flowspec: 1
name: t
nodes:
  phone: {type: transport.twilio}
  llm:
    type: openai.realtime
    settings:
      session_properties:
        audio:
          input: {format: {type: audio/pcmu}}
          output: {format: {type: audio/pcmu}}
edges: [phone -> llm -> phone]
"""
    graph = compile_text(text, env={}).raise_for_errors()
    assert graph.inserted == frozenset()


def test_a_transport_round_trip_is_not_a_cycle_but_a_loop_through_models_is() -> None:
    ok = compile_text("""\
flowspec: 1
name: t
nodes:
  chat: {type: transport.text}
  a: {type: openai.responses}
  b: {type: openai.responses}
edges: [chat -> a -> b -> chat]
""", env={})
    assert ok.ok
    loop = compile_text("""\
flowspec: 1
name: t
nodes:
  chat: {type: transport.text}
  a: {type: openai.responses}
  b: {type: openai.responses}
edges: [chat -> a -> b -> chat, b -> a]
""", env={})
    assert [d.code for d in loop.errors] == ["graph.cycle"]


def test_edge_queue_options_reach_the_compiled_edge() -> None:
    graph = compile_text("""\
flowspec: 1
name: t
nodes:
  caller: {type: transport.websocket, audio: {sample_rate: 16000}}
  llm: {type: openai.realtime}
edges:
  - {from: caller.out, to: llm.in, queue: {capacity: 8, overflow: drop_oldest}}
  - llm -> caller
""", env={}).raise_for_errors()
    first = graph.edges_from("caller")[0]
    assert (first.capacity, first.overflow.value, first.inserted) == (8, "drop_oldest", True)
    assert graph.downstream("caller") == {"caller_to_llm_convert", "llm", "llm_to_caller_convert",
                                          "caller"}


def test_content_hash_ignores_layout_but_not_content() -> None:
    base = "flowspec: 1\nname: t\nnodes:\n  chat: {type: transport.text}\n  llm: {type: " \
           "openai.responses}\nedges: [chat -> llm -> chat]\n"
    same = base.replace("  chat: {type: transport.text}", "  chat:\n    type: transport.text  # c")
    other = base.replace("name: t", "name: u")
    h = [compile_text(t, env={}).raise_for_errors().content_hash for t in (base, same, other)]
    assert h[0] == h[1] != h[2]


def test_a_misspelt_edge_endpoint_leads_and_what_it_leaves_wrong_is_folded_under_it() -> None:
    text = (ROOT / "specs" / "voice-assistant.yaml").read_text()
    assert "caller -> llm -> caller" in text
    report = compile_text(text.replace("caller -> llm -> caller", "caller -> lllm -> caller"),
                          "bot.yaml", env={})
    (cause,) = report.diagnostics
    assert (cause.code, cause.pointer, cause.hint) == (
        "edge.unknown-node", "/edges/0", "did you mean 'llm'?")
    assert cause.consequences == (
        "llm.in receives nothing: connect an edge to it",
        "llm.out goes nowhere: its frames are dropped",
        "node 'llm' is not reachable from the entry transport 'caller'")
    lines = str(cause).splitlines()
    assert lines[0].endswith("edge names no node 'lllm' (did you mean 'llm'?) "
                             "[edge.unknown-node]")
    assert lines[1:] == [f"    so {c}" for c in cause.consequences]
    assert cause.to_json()["consequences"] == list(cause.consequences)


def test_a_node_no_misspelling_meant_keeps_its_own_findings() -> None:
    report = compile_text("""\
flowspec: 1
name: t
nodes:
  chat: {type: transport.text}
  llm: {type: openai.responses}
  other: {type: openai.responses}
edges: [chat -> llm -> chat, chat -> zzzzzz]
""", "t.yaml", env={})
    codes = {(d.code, d.pointer) for d in report.diagnostics}
    assert ("edge.unknown-node", "/edges/1") in codes
    assert ("graph.dangling-input", "/nodes/other") in codes
    assert all(not d.consequences for d in report.diagnostics)
