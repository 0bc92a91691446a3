"""Draw a compiled graph as Mermaid or Graphviz DOT: nodes, edges with the kinds they carry,
inserted converters (dashed) and tool links (dotted). Only types and formats are shown, never
field values, so no secret can leak into a drawing."""

from __future__ import annotations

import re

from flowspec.spec.compiled import CompiledGraph
from flowspec.spec.models.audio import AudioConvertSpec
from flowspec.spec.ports import AudioCaps


def _label(graph: CompiledGraph, node_id: str) -> tuple[str, str]:
    node = graph.nodes[node_id]
    detail = node.type
    if isinstance(node, AudioConvertSpec):
        detail += f": {AudioCaps.of(node.input)} → {AudioCaps.of(node.output)}"
    if node_id in graph.inserted:
        detail += " (inserted)"
    return node_id, detail


def _kinds(kinds: frozenset[str]) -> str:
    return ", ".join(sorted(kinds))


def to_mermaid(graph: CompiledGraph) -> str:
    def ident(node_id: str) -> str:
        return "n_" + re.sub(r"[^A-Za-z0-9_]", "_", node_id)

    lines = ["flowchart LR", f"  %% {graph.name} v{graph.version} ({graph.content_hash})"]
    for node_id, node in graph.nodes.items():
        name, detail = _label(graph, node_id)
        text = f'"{name}<br/><small>{detail}</small>"'
        if node.kind == "tool":
            lines.append(f"  {ident(node_id)}{{{{{text}}}}}")
        elif node.kind == "transport":
            lines.append(f"  {ident(node_id)}([{text}])")
        elif node_id in graph.inserted:
            lines.append(f"  {ident(node_id)}[/{text}/]")
        else:
            lines.append(f"  {ident(node_id)}[{text}]")
    for edge in graph.edges:
        ports = ""
        if edge.source.port != "out" or edge.target.port != "in":
            ports = f"{edge.source.port}→{edge.target.port}: "
        arrow = "-.->" if edge.inserted else "-->"
        lines.append(f"  {ident(edge.source.node)} {arrow}|\"{ports}{_kinds(edge.kinds)}\"| "
                     f"{ident(edge.target.node)}")
    for model_id, tool_ids in graph.tools.items():
        for tool_id in tool_ids:
            lines.append(f"  {ident(model_id)} -. tool .- {ident(tool_id)}")
    if graph.inserted:
        lines.append("  classDef inserted stroke-dasharray: 5 5")
        lines.append("  class " + ",".join(ident(n) for n in sorted(graph.inserted)) + " inserted")
    return "\n".join(lines) + "\n"


def to_dot(graph: CompiledGraph) -> str:
    def q(text: str) -> str:
        return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'

    lines = [f"digraph {q(graph.name)} {{", "  rankdir=LR;",
             '  node [shape=box, fontname="Helvetica"];']
    for node_id, node in graph.nodes.items():
        name, detail = _label(graph, node_id)
        attrs = [f"label={q(name + chr(10) + detail)}"]
        if node.kind == "tool":
            attrs.append("shape=hexagon")
        elif node.kind == "transport":
            attrs.append("shape=oval")
        if node_id in graph.inserted:
            attrs.append("style=dashed")
        lines.append(f"  {q(node_id)} [{', '.join(attrs)}];")
    for edge in graph.edges:
        attrs = [f"label={q(_kinds(edge.kinds))}"]
        if edge.source.port != "out":
            attrs.append(f"taillabel={q(edge.source.port)}")
        if edge.target.port != "in":
            attrs.append(f"headlabel={q(edge.target.port)}")
        if edge.inserted:
            attrs.append("style=dashed")
        lines.append(f"  {q(edge.source.node)} -> {q(edge.target.node)} [{', '.join(attrs)}];")
    for model_id, tool_ids in graph.tools.items():
        for tool_id in tool_ids:
            lines.append(f"  {q(model_id)} -> {q(tool_id)} [style=dotted, dir=both, "
                         'label="tool"];')
    lines.append("}")
    return "\n".join(lines) + "\n"
