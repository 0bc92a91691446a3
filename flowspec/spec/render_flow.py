"""Draw a spec's `flow:` as a state machine, Mermaid `stateDiagram-v2` or Graphviz DOT.

Each transition is an arrow labelled by the tool or function whose call takes it (a branch
table's cases as `tool: case`, its fallback as `tool: default`); the call starts in the initial
state and may end in a final state or one whose `on_enter` ends the call. Only names are drawn,
never instructions or words, so no secret or variable value can leak into a drawing.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from flowspec.spec.compiled import CompiledGraph
from flowspec.spec.models.flow import BranchSpec, FlowSpec, StateSpec

# Mermaid takes a bare state id of word characters; other names are declared with an alias.
_PLAIN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# DOT ids for the start and end points: `*` is in no state name, so these never collide.
_START, _END = "*start", "*end"


def moves(state: StateSpec) -> Iterator[tuple[str, str]]:
    """(label, target state) for every way out of `state`, in the order the spec gives them."""
    for tool, transition in state.transitions.items():
        if not isinstance(transition, BranchSpec):
            yield tool, transition
            continue
        if transition.to is not None:
            yield tool, transition.to
            continue
        for case, target in transition.cases.items():
            yield f"{tool}: {case}", target
        if transition.default is not None:
            yield f"{tool}: default", transition.default


def ends(state: StateSpec) -> str | None:
    """How a call ends in `state`: "end_call" when entering it hangs up, "" when it is final,
    None when the call goes on."""
    if any(action.end_call for action in state.on_enter):
        return "end_call"
    return "" if state.final else None


def to_mermaid(graph: CompiledGraph) -> str:
    """The flow as Mermaid `stateDiagram-v2`. Raises ValueError when the spec has no flow."""
    flow = _require(graph)
    ids = _mermaid_ids(flow)
    lines = ["stateDiagram-v2", f"  %% {graph.name} v{graph.version} ({graph.content_hash})"]
    for name, state_id in ids.items():
        if state_id != name:
            lines.append(f'  state "{name}" as {state_id}')
    lines.append(f"  [*] --> {ids[flow.initial]}")
    for name, state in flow.states.items():
        for label, target in moves(state):
            lines.append(f"  {ids[name]} --> {ids[target]}: {_mermaid_text(label)}")
        end = ends(state)
        if end is not None:
            lines.append(f"  {ids[name]} --> [*]" + (f": {end}" if end else ""))
    return "\n".join(lines) + "\n"


def to_dot(graph: CompiledGraph) -> str:
    """The flow as a Graphviz digraph. Raises ValueError when the spec has no flow."""
    flow = _require(graph)

    def q(text: str) -> str:
        return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'

    lines = [f"digraph {q(graph.name)} {{", "  rankdir=LR;",
             '  node [shape=box, style=rounded, fontname="Helvetica"];',
             '  edge [fontname="Helvetica"];',
             f'  {q(_START)} [shape=point, label=""];']
    finishing = any(ends(state) is not None for state in flow.states.values())
    if finishing:
        lines.append(f'  {q(_END)} [shape=doublecircle, label="", width=0.15];')
    for name, state in flow.states.items():
        attrs = [f"label={q(name)}"]
        if ends(state) is not None:
            attrs.append("peripheries=2")
        lines.append(f"  {q(name)} [{', '.join(attrs)}];")
    lines.append(f"  {q(_START)} -> {q(flow.initial)};")
    for name, state in flow.states.items():
        for label, target in moves(state):
            lines.append(f"  {q(name)} -> {q(target)} [label={q(label)}];")
        end = ends(state)
        if end is not None:
            lines.append(f"  {q(name)} -> {q(_END)}" + (f" [label={q(end)}];" if end else ";"))
    lines.append("}")
    return "\n".join(lines) + "\n"


def _require(graph: CompiledGraph) -> FlowSpec:
    flow = graph.spec.flow
    if flow is None:
        raise ValueError(f"{graph.name} declares no flow:")
    return flow


def _mermaid_ids(flow: FlowSpec) -> dict[str, str]:
    taken = {name for name in flow.states if _PLAIN.match(name)}
    ids: dict[str, str] = {}
    for name in flow.states:
        if _PLAIN.match(name):
            ids[name] = name
            continue
        base = re.sub(r"[^A-Za-z0-9_]", "_", name)
        candidate, n = base, 1
        while candidate in taken:
            n += 1
            candidate = f"{base}_{n}"
        taken.add(candidate)
        ids[name] = candidate
    return ids


def _mermaid_text(label: str) -> str:
    # A label ends at the line's end, and `;` would end the statement; case values are free text.
    return " ".join(label.split()).replace(";", "#59;")
