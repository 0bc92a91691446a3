"""Applying a plan to sessions that cannot take it: a node that fails, a session on another graph,
a provider that never answers."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flowspec.frames import Frame
from flowspec.reload.apply import Applier
from flowspec.reload.diff import diff
from flowspec.reload.plan import build_plan
from flowspec.runtime.bus import Bus, SettingsApplied
from flowspec.spec.compile import compile_text
from flowspec.spec.compiled import CompiledGraph
from flowspec.spec.load import parse

from .conftest import VOICE

NEW = VOICE.replace("You are terse.", "Be kind.")
OLD_GRAPH = compile_text(VOICE, "bot.yaml", {}).raise_for_errors()
NEW_GRAPH = compile_text(NEW, "bot.yaml", {}, version=2).raise_for_errors()
PLAN = build_plan(OLD_GRAPH, NEW_GRAPH, diff(parse(VOICE).data, parse(NEW).data))
POINTER = "/nodes/llm/settings/system_instruction"


class Failing:
    async def handle(self, frame: Frame, port: str) -> None:
        raise RuntimeError("boom")


class Silent:
    """Takes the update and says it sent it; the provider never answers."""

    def __init__(self, bus: Bus, session_id: str) -> None:
        self.bus, self.session_id = bus, session_id

    async def handle(self, frame: Frame, port: str) -> None:
        self.bus.publish(SettingsApplied(session_id=self.session_id, node_id="llm",
                                         changed=("instructions",), version=2))


@dataclass
class FakeSession:
    id: str
    graph: CompiledGraph
    llm: Any

    def node(self, node_id: str) -> Any:
        return self.llm


async def test_a_failing_node_is_reported_and_other_sessions_still_apply() -> None:
    bus = Bus()
    applier = Applier(bus, confirm_timeout=0.01)
    failing = FakeSession("a", OLD_GRAPH, Failing())
    silent = FakeSession("b", OLD_GRAPH, Silent(bus, "b"))
    text_only = compile_text(VOICE.replace("type: openai.realtime", "type: openai.responses")
                             .replace("      session_properties:\n        audio:\n          "
                                      "input:\n            turn_detection: {type: server_vad}\n"
                                      "          output: {voice: marin}\n", ""),
                             "bot.yaml", {}).raise_for_errors()
    other = FakeSession("c", text_only, Failing())
    reports = {r.session_id: r for r in await applier.apply(PLAN, [failing, silent, other])}
    assert reports["a"].status == "rejected"
    assert "the node failed: boom" in reports["a"].rejected[0]["reason"]
    assert reports["b"].status == "deferred"
    assert "did not confirm" in reports["b"].deferred[0]["reason"]
    assert reports["c"].deferred == [{"pointer": POINTER, "reason": (
        "this session runs graph version 1, where 'llm' is not a openai.realtime node")}]
    assert {r.version for r in reports.values()} == {1}
    assert applier.version_of(failing) == 1
