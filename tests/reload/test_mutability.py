"""The schema's mutability class of every node field agrees with where `flowspec plan` says a
change to it applies: a field marked `live` (or `until_first_audio`) reaches live sessions, and
every other field reaches new sessions only."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from flowspec.families.registry import default_families
from flowspec.reload.diff import Change, classify
from flowspec.reload.plan import LIVE_CLASSES, build_plan
from flowspec.spec.compile import compile_text
from flowspec.spec.compiled import CompiledGraph
from flowspec.spec.schema import build_schema

BASE = """\
flowspec: 1
name: t
nodes:
  chat: {type: transport.text}
  llm: {type: openai.responses}
edges: [chat -> llm -> chat]
"""
TYPES = [t for t in default_families().types if default_families().origin(t).package == "flowspec"]


def graph_with(node_type: str) -> CompiledGraph:
    """A graph holding one node of `node_type` (the entry, when it is a transport), built from
    its editor snippet: the plan reads only the nodes and the entry."""
    families = default_families()
    node = families.model(node_type).model_validate(families.snippet(node_type))
    base = compile_text(BASE, "t.yaml", env={}).raise_for_errors()
    entry = "n" if node.kind == "transport" else base.entry
    return dataclasses.replace(base, nodes={**base.nodes, "n": node}, entry=entry)


def node_fields(node_type: str) -> list[str]:
    model = default_families().model(node_type)
    return [name for name, field in model.model_fields.items() if name != "type"
            and (field.alias or name) == name]


def applies(graph: CompiledGraph, node_type: str, field: str) -> tuple[str, str, str]:
    info = classify(build_schema(), ["nodes", "n", field], node_type)
    change = Change(f"/nodes/n/{field}", "replace", 1, 2, info.mutability)
    (planned,) = build_plan(graph, graph, [change]).changes
    return info.mutability.value, planned.applies, planned.reason


@pytest.mark.parametrize("node_type", TYPES)
def test_a_field_the_schema_marks_live_is_planned_live_and_no_other(node_type: str) -> None:
    graph = graph_with(node_type)
    disagree: dict[str, Any] = {}
    for field in node_fields(node_type):
        mutability, where, reason = applies(graph, node_type, field)
        marked_live = mutability in {m.value for m in LIVE_CLASSES}
        planned_live = where in ("live", "until_first_audio")
        if marked_live != planned_live:
            disagree[field] = (mutability, where, reason)
    assert not disagree, f"{node_type}: schema and plan disagree: {disagree}"


def test_every_built_in_type_is_checked_with_its_fields() -> None:
    assert {"openai.realtime", "openai.realtime_beta", "openai.responses", "tool.http",
            "transport.websocket", "transport.twilio"} <= set(TYPES)
    assert {"video_frame_detail", "settings"} <= set(node_fields("openai.realtime"))


@pytest.mark.parametrize(("node_type", "field"), [
    ("openai.realtime_beta", "send_transcription_frames"),
    ("openai.realtime", "video_frame_detail"),
    ("openai.responses", "store"),
    ("openai.responses", "retry_timeout_secs"),
])
def test_node_level_fields_read_at_session_start_say_so(node_type: str, field: str) -> None:
    assert applies(graph_with(node_type), node_type, field)[:2] == (
        "next_session", "new_sessions")


def test_settings_and_the_deprecated_top_level_session_are_live() -> None:
    for node_type, field in (("openai.realtime", "settings"),
                             ("openai.realtime", "session_properties"),
                             ("openai.realtime_beta", "session_properties"),
                             ("transport.websocket", "allowed_origins")):
        assert applies(graph_with(node_type), node_type, field)[1] == "live", (node_type, field)
