"""Completion and hover from the committed schema, asked of the real yaml-language-server."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from flowspec.families.registry import builtin_families
from flowspec.spec.models.realtime import GA_VOICES

from .conftest import modeline
from .lsp import LanguageServer, cursor

NODE_TYPES = builtin_families().types
"""The types the committed schema describes (installed plugins are not in it)."""

GA_NODE = """\
flowspec: 1
name: t
nodes:
  llm:
    type: openai.realtime
    settings:
      session_properties:
        audio:
"""


def complete(server: LanguageServer, path: Path, text: str) -> dict[str, dict[str, Any]]:
    body, line, character = cursor(modeline() + text)
    uri = server.open(path, body)
    return {str(item["label"]): item for item in server.completion(uri, line, character)}


def hover(server: LanguageServer, path: Path, text: str) -> str:
    body, line, character = cursor(modeline() + text)
    return server.hover(server.open(path, body), line, character)


def documentation(item: dict[str, Any]) -> str:
    doc = item.get("documentation", "")
    return str(doc["value"] if isinstance(doc, dict) else doc)


def test_type_of_a_new_node_lists_every_node_type(server: LanguageServer, doc_path: Path) -> None:
    items = complete(server, doc_path, "flowspec: 1\nname: t\nnodes:\n  llm:\n    type: <|>\n")
    assert set(NODE_TYPES) <= set(items)
    assert "GA dialect" in documentation(items["openai.realtime"])
    assert "legacy beta" in documentation(items["openai.realtime_beta"])


def test_a_new_node_offers_a_snippet_per_type(server: LanguageServer, doc_path: Path) -> None:
    items = complete(server, doc_path, "flowspec: 1\nname: t\nnodes:\n  llm:\n    <|>\n")
    for node_type in NODE_TYPES:
        snippet = items[f"{node_type} node"]
        assert snippet["insertText"].startswith(f"type: {node_type}"), node_type
    body = items["tool.python node"]["insertText"]
    assert "handler:" in body and "parameters:" in body


def test_fields_of_a_typed_node_come_with_defaults(server: LanguageServer,
                                                  doc_path: Path) -> None:
    items = complete(server, doc_path, "flowspec: 1\nname: t\nnodes:\n  caller:\n"
                     "    type: transport.twilio\n    <|>\n")
    assert {"path", "webhook_path", "public_url", "auth_token", "clear_on_interruption"} <= \
        set(items)
    assert "base_url" not in items and "settings" not in items  # other node kinds' fields
    assert items["webhook_path"]["insertText"] == "webhook_path: ${1:/twilio/voice}"
    assert "**Next session**" in documentation(items["path"])


def test_ga_output_audio_offers_voice_speed_format(server: LanguageServer,
                                                  doc_path: Path) -> None:
    items = complete(server, doc_path, GA_NODE + "          output:\n            <|>\n")
    assert {"voice", "speed", "format"} <= set(items)
    assert "Until first audio" in documentation(items["voice"])
    assert "**Live**" in documentation(items["speed"])


def test_voice_value_completes_to_the_documented_voices(server: LanguageServer,
                                                        doc_path: Path) -> None:
    items = complete(server, doc_path, GA_NODE + "          output:\n            voice: <|>\n")
    assert set(GA_VOICES) <= set(items)
    assert "recommended" in documentation(items["marin"])
    assert "default" in documentation(items["alloy"])


def test_enum_values_complete_with_their_descriptions(server: LanguageServer,
                                                      doc_path: Path) -> None:
    items = complete(server, doc_path, GA_NODE + "          input:\n            turn_detection:\n"
                     "              type: semantic_vad\n              eagerness: <|>\n")
    assert {"low", "medium", "high", "auto"} <= set(items)
    assert "8 s" in documentation(items["low"])


def test_deprecated_fields_are_not_suggested(server: LanguageServer, doc_path: Path) -> None:
    items = complete(server, doc_path, "flowspec: 1\nname: t\nnodes:\n  llm:\n"
                     "    type: openai.realtime\n    <|>\n")
    assert "settings" in items and "tools" in items
    # Both Realtime dialects deprecate a node-level `model` (yaml-language-server also offers
    # the beta node's fields here: it matches the typed `type` value as a prefix while completing).
    assert "model" not in items


def test_edges_offer_the_chain_and_object_snippets(server: LanguageServer,
                                                   doc_path: Path) -> None:
    items = complete(server, doc_path, "flowspec: 1\nname: t\nnodes:\n  llm:\n"
                     "    type: openai.realtime\nedges:\n  - <|>\n")
    assert {"from", "to", "queue"} <= set(items)
    assert items["edge chain"]["insertText"] == "${1:caller} -> ${2:llm} -> ${1:caller}"
    body = items["edge object with queue"]["insertText"]
    assert body.startswith("from: ${1:caller.out}\n  to: ${2:llm.in}\n  queue:")


def test_hover_shows_description_default_and_mutability(server: LanguageServer,
                                                        doc_path: Path) -> None:
    text = hover(server, doc_path, GA_NODE + "          input:\n            turn_detection:\n"
                 "              type: server_vad\n              silence_<|>duration_ms: 300\n")
    assert "Silence that ends a turn, in milliseconds." in text
    assert "Provider default: `500`" in text
    assert "**Live**: a change applies to running sessions." in text
    assert text.startswith("#### openai.realtime")  # the node kind, not a class name


def test_hover_on_a_voice_value_lists_the_voices(server: LanguageServer, doc_path: Path) -> None:
    text = hover(server, doc_path, GA_NODE + "          output:\n            voice: ced<|>ar\n")
    assert "Voice of the model" in text
    assert "* `cedar`: Built-in voice, GA only; recommended by OpenAI." in text


def test_hover_on_a_key_shows_its_mutability(server: LanguageServer, doc_path: Path) -> None:
    text = hover(server, doc_path, GA_NODE + "          output:\n            vo<|>ice: cedar\n")
    assert "**Until first audio**: a change applies to sessions that have not produced audio " \
        "yet" in text
    assert 'Provider default: `"alloy"`' in text


def test_beta_hover_shows_the_beta_default(server: LanguageServer, doc_path: Path) -> None:
    text = hover(server, doc_path, "flowspec: 1\nname: t\nnodes:\n  llm:\n"
                 "    type: openai.realtime_beta\n    settings:\n      session_properties:\n"
                 "        turn_detection: {type: server_vad, silence_<|>duration_ms: 300}\n")
    assert "Provider default: `800`" in text
    assert text.startswith("#### openai.realtime\\_beta")
