"""The plan of a spec change: each changed field with where it applies, and per model node the
settings delta live sessions receive, with the exact `session.update` a Realtime node sends.

Where a change applies follows the field's mutability class, narrowed to what a running session
can take: `live` (model-node settings, the definitions of the tools a model calls, the spec's
name and description), `until_first_audio` (the voice: sessions that have produced audio keep
theirs), and `new_sessions` for the rest (`next_session`, `structural`, and live-marked fields
with no live path, such as tool time limits and transport options). `rejected` changes cannot be
served without a restart (the paths the server routes).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from flowspec.nodes.openai_realtime import protocol, protocol_beta
from flowspec.nodes.openai_realtime.delta import minimal_session
from flowspec.nodes.openai_realtime.settings import LiveSettings
from flowspec.nodes.tool_defs import Dialect, tool_definitions
from flowspec.reload.diff import Change, classify, split_pointer
from flowspec.spec.compiled import CompiledGraph
from flowspec.spec.models.base import Mutability, NodeSpec
from flowspec.spec.models.realtime import RealtimeNodeSpec
from flowspec.spec.models.realtime_beta import RealtimeBetaNodeSpec
from flowspec.spec.models.responses import ResponsesNodeSpec
from flowspec.spec.models.tools import ToolNodeSpec

Applies = Literal["live", "until_first_audio", "new_sessions", "rejected"]
MODEL_TYPES = ("openai.realtime", "openai.realtime_beta", "openai.responses")
LIVE_TOOL_FIELDS = frozenset({"description", "parameters", "strict"})
ROUTED_FIELDS = frozenset({"path", "webhook_path"})
CONNECTION_FIELDS = frozenset({"allowed_origins", "max_sessions"})
"""Entry-transport fields the server reads at each connection: all they govern is live."""
LIVE_CLASSES = (Mutability.LIVE, Mutability.UNTIL_FIRST_AUDIO)
PRIVILEGED_NOTE = ("it sets code, a file or a URL; through the admin API only on a server "
                   "started with --admin-allow-code")


@dataclass(frozen=True, slots=True)
class PlannedChange:
    change: Change
    applies: Applies
    reason: str = ""

    def to_json(self) -> dict[str, Any]:
        body = self.change.to_json() | {"applies": self.applies}
        if self.reason:
            body["reason"] = self.reason
        return body


@dataclass(frozen=True, slots=True)
class NodeAction:
    """What live sessions of one model node receive. `wire` is the `session.update` for a
    session running the old spec's settings; `wire_after_audio` the one for a session that has
    produced audio (the voice left out), when it differs."""

    node_id: str
    type: str
    delta: dict[str, Any]
    wire: dict[str, Any] | None = None
    wire_after_audio: dict[str, Any] | None = None
    carries: tuple[str, ...] = ()
    """The nodes whose changes this action carries: the model node and the tools it calls."""

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {"node": self.node_id, "type": self.type, "delta": self.delta}
        if self.type == "openai.responses":
            body["applies"] = "from the next request"
        else:
            body["wire"] = self.wire
            if self.wire_after_audio is not None:
                body["wire_after_audio"] = self.wire_after_audio
        return body


@dataclass(slots=True)
class Plan:
    name: str
    from_version: int
    to_version: int
    changes: list[PlannedChange] = field(default_factory=list)
    actions: list[NodeAction] = field(default_factory=list)

    @property
    def rejected(self) -> list[PlannedChange]:
        return [c for c in self.changes if c.applies == "rejected"]

    @property
    def ok(self) -> bool:
        return not self.rejected

    @property
    def new_graph(self) -> bool:
        """New sessions need the new compiled graph (something beyond live settings changed)."""
        return any(c.applies == "new_sessions" for c in self.changes)

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "from_version": self.from_version,
                "to_version": self.to_version, "ok": self.ok,
                "changes": [c.to_json() for c in self.changes],
                "nodes": [a.to_json() for a in self.actions]}

    def render(self) -> str:
        """The plan as text, for `flowspec plan`."""
        lines = [f"plan for {self.name}: v{self.from_version} -> v{self.to_version}"]
        if not self.changes:
            lines.append("  no changes")
        for planned in self.changes:
            c = planned.change
            body = c.to_json()
            values = " -> ".join(_short(body[k]) for k in ("old", "new") if k in body)
            lines.append(f"  {c.op:<7} {c.pointer}  [{c.mutability.value}] {planned.applies}"
                         f"{': ' + planned.reason if planned.reason else ''}")
            lines.append(f"          {values}")
            if c.privileged:
                lines.append(f"          privileged: {PRIVILEGED_NOTE}")
        for action in self.actions:
            if action.type == "openai.responses":
                lines.append(f"node {action.node_id} ({action.type}): from the next request: "
                             f"{json.dumps(action.delta, sort_keys=True)}")
                continue
            lines.append(f"node {action.node_id} ({action.type}) sends to live sessions:")
            lines.append(f"  {json.dumps(action.wire)}")
            if action.wire_after_audio is not None:
                after = json.dumps(action.wire_after_audio) if action.wire_after_audio \
                    else "nothing"
                lines.append(f"  after the session produced audio (voice deferred): {after}")
        verdict = "rejected" if not self.ok else "ok"
        lines.append(f"{verdict}: {len(self.changes)} change(s), "
                     f"{len(self.rejected)} rejected")
        return "\n".join(lines)


def _short(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= 120 else text[:117] + "..."


def build_plan(old: CompiledGraph, new: CompiledGraph, changes: list[Change], *,
               served: bool = False) -> Plan:
    """The plan for going from `old` to `new` (both valid), given the document diff."""
    plan = Plan(name=new.name, from_version=old.version, to_version=new.version)
    live_tools: set[str] = set()
    for change in changes:
        applies, reason = _where(change, old, new, served)
        plan.changes.append(PlannedChange(change, applies, reason))
        parts = split_pointer(change.pointer)
        if applies == "live" and change.node_id and len(parts) > 2 and \
                _is_tool(new.nodes.get(change.node_id)):
            live_tools.add(change.node_id)
    for node_id, spec in new.nodes.items():
        before = old.nodes.get(node_id)
        if spec.type not in MODEL_TYPES or before is None or before.type != spec.type:
            continue
        if old.tools.get(node_id) != new.tools.get(node_id):
            continue  # a new tool wiring: structural, for new sessions
        retooled = sorted(live_tools & set(new.tools.get(node_id, ())))
        action = _node_action(node_id, old, new, retooled)
        if action is not None:
            plan.actions.append(action)
    return plan


def _is_tool(spec: NodeSpec | None) -> bool:
    return isinstance(spec, ToolNodeSpec)


def _where(change: Change, old: CompiledGraph, new: CompiledGraph,
           served: bool) -> tuple[Applies, str]:
    parts = split_pointer(change.pointer)
    node_id = change.node_id
    if parts and parts[0] in ("name", "description") and len(parts) == 1:
        return "live", ""
    if node_id is None or len(parts) < 3:
        return "new_sessions", ""
    spec = new.nodes.get(node_id) or old.nodes.get(node_id)
    before = old.nodes.get(node_id)
    if served and parts[2] in ROUTED_FIELDS and node_id == old.entry:
        return "rejected", "the server routes this path; restart to change it"
    if spec is None or before is None or before.type != spec.type:
        return "new_sessions", ""
    if change.mutability not in LIVE_CLASSES:
        return "new_sessions", ""
    if spec.type in MODEL_TYPES and parts[2] == "tools":
        return "new_sessions", "the tools a model may call are wired when a session starts"
    if spec.type in MODEL_TYPES and (parts[2] == "settings" or (
            spec.type == "openai.realtime_beta" and parts[2] in ("model",
                                                                  "session_properties"))):
        if change.mutability is Mutability.UNTIL_FIRST_AUDIO:
            return "until_first_audio", "sessions that have produced audio keep their voice"
        return "live", ""
    if isinstance(spec, ToolNodeSpec) and parts[2] in LIVE_TOOL_FIELDS:
        return "live", ""
    if parts[2] in CONNECTION_FIELDS and node_id == new.entry:
        return "live", "checked for each new connection"
    return "new_sessions", "read when a session starts"


def _tool_specs(graph: CompiledGraph, node_id: str) -> dict[str, ToolNodeSpec]:
    specs: dict[str, ToolNodeSpec] = {}
    for tool_id in graph.tools.get(node_id, ()):
        spec = graph.nodes[tool_id]
        if isinstance(spec, ToolNodeSpec):
            specs[spec.function_name(tool_id)] = spec
    return specs


def _node_action(node_id: str, old: CompiledGraph, new: CompiledGraph,
                 retooled: list[str]) -> NodeAction | None:
    before, after = old.nodes[node_id], new.nodes[node_id]
    assert isinstance(before, RealtimeNodeSpec | RealtimeBetaNodeSpec | ResponsesNodeSpec)
    assert isinstance(after, RealtimeNodeSpec | RealtimeBetaNodeSpec | ResponsesNodeSpec)
    old_settings = _settings(before)
    delta = _live_only(merge_diff(old_settings, _settings(after)), node_id, after.type)
    dialect: Dialect = "responses" if after.type == "openai.responses" else "realtime"
    carries = (node_id, *retooled)
    if retooled:
        specs = _tool_specs(new, node_id)
        delta["tools"] = tool_definitions(list(specs), specs, dialect)
    if not delta:
        return None
    if isinstance(after, ResponsesNodeSpec):
        return NodeAction(node_id, after.type, delta, carries=carries)
    assert isinstance(before, RealtimeNodeSpec | RealtimeBetaNodeSpec)
    live = LiveSettings(before, _tool_specs(old, node_id), node_id=node_id)
    session_before = live.session_payload()
    live.update(delta, new.version, "", audio_sent=False)
    wire = _wire(after, minimal_session(session_before, live.session_payload(),
                                        beta=isinstance(after, RealtimeBetaNodeSpec)))
    voiced = LiveSettings(before, _tool_specs(old, node_id), node_id=node_id)
    voiced.update(delta, new.version, "", audio_sent=True)
    after_audio = _wire(after, minimal_session(session_before, voiced.session_payload(),
                                               beta=isinstance(after, RealtimeBetaNodeSpec)))
    return NodeAction(node_id, after.type, delta, wire,
                      None if after_audio == wire else after_audio, carries)


def _wire(spec: NodeSpec, session: dict[str, Any]) -> dict[str, Any]:
    if not session:
        return {}
    dialect = protocol_beta if isinstance(spec, RealtimeBetaNodeSpec) else protocol
    return protocol.session_update(dialect.settings_session(session))


def _settings(spec: RealtimeNodeSpec | RealtimeBetaNodeSpec | ResponsesNodeSpec
              ) -> dict[str, Any]:
    settings = spec.settings if isinstance(spec, ResponsesNodeSpec) else \
        spec.effective_settings()
    return settings.model_dump(mode="json", exclude_unset=True)


def merge_diff(old: Mapping[str, Any], new: Mapping[str, Any]) -> dict[str, Any]:
    """The JSON merge patch taking `old` to `new` (`None`: removed)."""
    out: dict[str, Any] = {}
    for key in [*new, *(k for k in old if k not in new)]:
        if key not in new:
            out[key] = None
        elif isinstance(old.get(key), Mapping) and isinstance(new[key], Mapping):
            inner = merge_diff(old[key], new[key])
            if inner:
                out[key] = inner
        elif key not in old or old[key] != new[key]:
            out[key] = new[key]
    return out


def _live_only(delta: dict[str, Any], node_id: str, node_type: str,
               path: tuple[str, ...] = ()) -> dict[str, Any]:
    """`delta` without the settings live sessions cannot take (the model: next session)."""
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
