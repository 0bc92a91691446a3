"""The plan of a spec change: each changed field with where it applies, and per model node the
settings delta live sessions receive, with the exact `session.update` a Realtime node sends.

Where a change applies follows the field's mutability class, narrowed to what a running session
can take: `live` (model-node settings, the definitions of the tools a model calls, the spec's
name and description), `until_first_audio` (the voice: sessions that have produced audio keep
theirs), and `new_sessions` for the rest (`next_session` and `structural`: the schema marks
live only the fields a live path carries, such as no tool time limit or transport option).
`rejected` changes cannot be served without a restart (the paths the server routes).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from flowspec.families.family import LivePath
from flowspec.families.registry import default_families
from flowspec.reload.diff import Change, split_pointer
from flowspec.reload.flow_live import flow_where, live_states
from flowspec.spec.compiled import CompiledGraph
from flowspec.spec.conversation_rules import conversation_model
from flowspec.spec.models.base import Mutability, NodeSpec
from flowspec.spec.models.conversation import ConversationSpec
from flowspec.spec.models.flow import FlowSpec
from flowspec.spec.models.tools import ToolNodeSpec

Applies = Literal["live", "until_first_audio", "new_sessions", "rejected"]
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
    produced audio (the voice left out), when it differs. A node with no wire message (Responses)
    applies `delta` from its next request."""

    node_id: str
    type: str
    delta: dict[str, Any]
    wire: dict[str, Any] | None = None
    wire_after_audio: dict[str, Any] | None = None
    carries: tuple[str, ...] = ()
    """The nodes whose changes this action carries: the model node and the tools it calls."""
    applies: str = "from the next request"
    """When a node with no wire message here takes `delta`."""

    @property
    def sends_update(self) -> bool:
        """Whether the node sends the change to its provider, which confirms or refuses it."""
        return self.wire is not None

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {"node": self.node_id, "type": self.type, "delta": self.delta}
        if not self.sends_update:
            body["applies"] = self.applies
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
    conversation: ConversationSpec | None = None
    """The new spec's conversation, when part of it applies to live calls (`idle`,
    `closing`): each live call's driver reads it from its next silence on."""
    flow: FlowSpec | None = None
    """The new spec's flow, when what some of its states offer applies to live calls."""
    flow_states: frozenset[str] = frozenset()
    """Those states."""

    @property
    def changes_by_node(self) -> dict[str, list[PlannedChange]]:
        """The live changes each model node's action carries (its own settings, and the tools
        it calls)."""
        return {action.node_id: [c for c in self.changes
                                 if c.applies in ("live", "until_first_audio")
                                 and c.change.node_id in action.carries]
                for action in self.actions}

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
            if not action.sends_update:
                lines.append(f"node {action.node_id} ({action.type}): {action.applies}: "
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
        if applies == "live" and split_pointer(change.pointer)[:1] == ["conversation"]:
            plan.conversation = new.spec.conversation
        parts = split_pointer(change.pointer)
        if applies == "live" and change.node_id and len(parts) > 2 and \
                _is_tool(new.nodes.get(change.node_id)):
            live_tools.add(change.node_id)
    plan.flow_states = live_states([(c.change, c.applies) for c in plan.changes])
    if plan.flow_states:
        plan.flow = new.spec.flow
    for node_id, spec in new.nodes.items():
        before = old.nodes.get(node_id)
        live = _live_path(spec)
        if live is None or before is None or before.type != spec.type:
            continue
        if old.tools.get(node_id) != new.tools.get(node_id):
            continue  # a new tool wiring: structural, for new sessions
        retooled = sorted(live_tools & set(new.tools.get(node_id, ())))
        action = live.action(node_id, old, new, retooled)
        if action is not None:
            plan.actions.append(action)
    return plan


def _conversation_where(parts: list[str], change: Change, old: CompiledGraph,
                        new: CompiledGraph) -> tuple[Applies, str]:
    """`idle` and `closing` reach live calls that have a conversation; the rest of it, and the
    variables, are read as a call begins."""
    live_part = parts[0] == "conversation" and len(parts) >= 2 and \
        parts[1] in ("idle", "closing")
    same_model = old.spec.conversation is not None and new.spec.conversation is not None and \
        conversation_model(old.spec) == conversation_model(new.spec)
    if live_part and same_model and change.mutability in LIVE_CLASSES:
        return "live", ("from each live call's next silence" if parts[1] == "idle"
                        else "said when a live call reaches max_duration_s")
    return "new_sessions", "read when a call begins"


def _live_path(spec: NodeSpec) -> LivePath | None:
    """The live path of the node's family (None: its changes reach new sessions only)."""
    families = default_families()
    return families.family(spec.type).live if spec.type in families else None


def _is_tool(spec: NodeSpec | None) -> bool:
    return isinstance(spec, ToolNodeSpec)


def _where(change: Change, old: CompiledGraph, new: CompiledGraph,
           served: bool) -> tuple[Applies, str]:
    parts = split_pointer(change.pointer)
    node_id = change.node_id
    if parts and parts[0] in ("name", "description") and len(parts) == 1:
        return "live", ""
    if parts and parts[0] in ("conversation", "variables"):
        return _conversation_where(parts, change, old, new)
    if parts and parts[0] == "flow":
        applies, reason = flow_where(parts, change, old, new)
        return ("live" if applies == "live" else "new_sessions"), reason
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
    live = _live_path(spec)
    found = live.applies(spec, parts[2], change.mutability) if live is not None else None
    if found is not None:
        return found
    if parts[2] in CONNECTION_FIELDS and node_id == new.entry:
        return "live", "checked for each new connection"
    return "new_sessions", "read when a session starts"


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
