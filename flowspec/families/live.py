"""The live paths of the built-in families: how a change to a running bot becomes wire traffic.

Model nodes take changed settings and the changed definitions of the tools they call: a Realtime
node as one minimal `session.update` (computed here exactly as the node computes it, so a plan
shows the very message), a Responses node from its next request. Tool nodes send nothing of their
own: their live fields travel with the model nodes that call them.

What these import (the Realtime protocol and settings code) is imported when a plan is made, not
when a spec is validated.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from flowspec.spec.models.base import Mutability, NodeSpec

if TYPE_CHECKING:
    from flowspec.reload.plan import Applies, NodeAction
    from flowspec.spec.compiled import CompiledGraph
    from flowspec.spec.models.tools import ToolNodeSpec

LIVE_TOOL_FIELDS = frozenset({"description", "parameters", "strict"})
"""The fields of a tool node a model node sends again (as its `tools` list) when they change."""

Dialect = Literal["realtime", "realtime_beta", "responses"]


@dataclass(frozen=True, slots=True)
class ModelLive:
    """The live path of a model family: changed settings reach running sessions."""

    dialect: Dialect
    settings_fields: frozenset[str] = frozenset({"settings"})
    """Top-level fields that hold settings (the beta node also takes `model` and
    `session_properties` at node level)."""

    def applies(self, spec: NodeSpec, field: str,
                mutability: Mutability) -> tuple[Applies, str] | None:
        if field == "tools":
            return "new_sessions", "the tools a model may call are wired when a session starts"
        if field not in self.settings_fields:
            return None
        if mutability is Mutability.UNTIL_FIRST_AUDIO:
            return "until_first_audio", "sessions that have produced audio keep their voice"
        return "live", ""

    def action(self, node_id: str, old: CompiledGraph, new: CompiledGraph,
               retooled: Sequence[str]) -> NodeAction | None:
        from flowspec.nodes.tool_defs import tool_definitions
        from flowspec.reload.plan import NodeAction, merge_diff

        before, after = old.nodes[node_id], new.nodes[node_id]
        delta = _live_only(merge_diff(_settings(before), _settings(after)), node_id, after.type)
        if retooled:
            specs = _tool_specs(new, node_id)
            delta["tools"] = tool_definitions(
                list(specs), specs, "responses" if self.dialect == "responses" else "realtime")
        if not delta:
            return None
        carries = (node_id, *retooled)
        if self.dialect == "responses":
            return NodeAction(node_id, after.type, delta, carries=carries)
        wire, after_audio = self._wires(node_id, old, new, delta)
        return NodeAction(node_id, after.type, delta, wire,
                          None if after_audio == wire else after_audio, carries)

    def _wires(self, node_id: str, old: CompiledGraph, new: CompiledGraph,
               delta: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
        """The `session.update` a session running `old` receives, before and after it has
        produced audio (the voice then stays as it was)."""
        from flowspec.nodes.openai_realtime import protocol, protocol_beta
        from flowspec.nodes.openai_realtime.delta import minimal_session
        from flowspec.nodes.openai_realtime.settings import LiveSettings
        from flowspec.spec.models.realtime import RealtimeNodeSpec
        from flowspec.spec.models.realtime_beta import RealtimeBetaNodeSpec

        beta = self.dialect == "realtime_beta"
        before = old.nodes[node_id]
        if not isinstance(before, RealtimeNodeSpec | RealtimeBetaNodeSpec):
            raise TypeError(f"{node_id!r} is a {before.type} node, not a Realtime one.")
        tools = _tool_specs(old, node_id)
        wires: list[dict[str, Any]] = []
        for audio_sent in (False, True):
            live = LiveSettings(before, tools, node_id=node_id)
            session_before = live.session_payload()
            live.update(delta, new.version, "", audio_sent=audio_sent)
            session = minimal_session(session_before, live.session_payload(), beta=beta)
            dialect = protocol_beta if beta else protocol
            wires.append(protocol.session_update(dialect.settings_session(session))
                         if session else {})
        return wires[0], wires[1]


@dataclass(frozen=True, slots=True)
class SettingsLive:
    """The live path of a family whose nodes take a `settings:` delta and act on it themselves:
    a speech node from its next request, a transcription node as one `session.update` of its
    own (the provider's echo is not awaited). `when` says which, in plans."""

    when: str = "from the next request"

    def applies(self, spec: NodeSpec, field: str,
                mutability: Mutability) -> tuple[Applies, str] | None:
        return ("live", "") if field == "settings" else None

    def action(self, node_id: str, old: CompiledGraph, new: CompiledGraph,
               retooled: Sequence[str]) -> NodeAction | None:
        from flowspec.reload.plan import NodeAction, merge_diff

        before, after = old.nodes[node_id], new.nodes[node_id]
        delta = _live_only(merge_diff(_settings(before), _settings(after)), node_id, after.type)
        return NodeAction(node_id, after.type, delta, carries=(node_id,),
                          applies=self.when) if delta else None


@dataclass(frozen=True, slots=True)
class ToolLive:
    """The live path of a tool family: its definition fields, carried by the model nodes that
    call it (see `LIVE_TOOL_FIELDS`)."""

    fields: frozenset[str] = LIVE_TOOL_FIELDS

    def applies(self, spec: NodeSpec, field: str,
                mutability: Mutability) -> tuple[Applies, str] | None:
        return ("live", "") if field in self.fields else None

    def action(self, node_id: str, old: CompiledGraph, new: CompiledGraph,
               retooled: Sequence[str]) -> NodeAction | None:
        return None


def _settings(spec: NodeSpec) -> dict[str, Any]:
    from flowspec.spec.models.realtime import RealtimeNodeSpec
    from flowspec.spec.models.realtime_beta import RealtimeBetaNodeSpec
    from flowspec.spec.models.responses import ResponsesNodeSpec
    from flowspec.spec.models.speech import SpeechNodeSpec, TranscribeNodeSpec

    if isinstance(spec, ResponsesNodeSpec | SpeechNodeSpec | TranscribeNodeSpec):
        return spec.settings.model_dump(mode="json", exclude_unset=True)
    if isinstance(spec, RealtimeNodeSpec | RealtimeBetaNodeSpec):
        return spec.effective_settings().model_dump(mode="json", exclude_unset=True)
    raise TypeError(f"A {spec.type} node has no model settings.")


def _tool_specs(graph: CompiledGraph, node_id: str) -> dict[str, ToolNodeSpec]:
    from flowspec.spec.models.tools import ToolNodeSpec

    specs: dict[str, ToolNodeSpec] = {}
    for tool_id in graph.tools.get(node_id, ()):
        spec = graph.nodes[tool_id]
        if isinstance(spec, ToolNodeSpec):
            specs[spec.function_name(tool_id)] = spec
    return specs


def _live_only(delta: Mapping[str, Any], node_id: str, node_type: str,
               path: tuple[str, ...] = ()) -> dict[str, Any]:
    """`delta` without the settings live sessions cannot take (the model: next session)."""
    from flowspec.reload.diff import classify
    from flowspec.reload.plan import LIVE_CLASSES
    from flowspec.spec.schema import build_schema

    out: dict[str, Any] = {}
    for key, value in delta.items():
        here = (*path, key)
        mutability = classify(build_schema(), ["nodes", node_id, "settings", *here],
                              node_type).mutability
        if mutability not in LIVE_CLASSES:
            continue
        if isinstance(value, dict) and value:
            inner = _live_only(value, node_id, node_type, here)
            if inner:
                out[key] = inner
        else:
            out[key] = value
    return out
