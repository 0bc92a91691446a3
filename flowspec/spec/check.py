"""Graph checks: edges resolved to ports, caps matched (with converters inserted), and the rules.

Everything is checked in one pass and every finding is returned, so `flowspec validate` shows all
problems of a spec at once. The port-level networkx graph keeps a transport's `in` and `out` apart,
which is why `caller -> llm -> caller` is a round trip and not a cycle.
"""

from __future__ import annotations

import dataclasses
import difflib
import re
from dataclasses import dataclass

from flowspec.errors import Diagnostic, Severity
from flowspec.spec.compiled import CompiledEdge, Overflow, PortRef
from flowspec.spec.conversation_rules import conversation_rules
from flowspec.spec.flow_rules import flow_rules
from flowspec.spec.load import Document, join_pointer
from flowspec.spec.models.audio import AudioConvertSpec
from flowspec.spec.models.base import NodeSpec
from flowspec.spec.models.graph import EdgeObjectSpec, GraphSpec, QueueSpec
from flowspec.spec.models.openai_common import OpenAINodeSpec
from flowspec.spec.models.tools import ToolNodeSpec
from flowspec.spec.ports import PortSpec, convertible, ports_of
from flowspec.spec.rules import node_rule_diagnostics
from flowspec.spec.validate import did_you_mean

_ARROW = re.compile(r"\s*->\s*")


@dataclass(slots=True)
class GraphParts:
    """What the checks produce: the final nodes and edges, converters included."""

    nodes: dict[str, NodeSpec]
    edges: list[CompiledEdge]
    tools: dict[str, tuple[str, ...]]
    entry: str | None
    inserted: set[str]


class _Checker:
    def __init__(self, doc: Document, spec: GraphSpec) -> None:
        self.doc = doc
        self.spec = spec
        self.nodes: dict[str, NodeSpec] = dict(spec.nodes)
        self.ports: dict[str, dict[str, PortSpec]] = {k: ports_of(v) for k, v in self.nodes.items()}
        self.found: list[Diagnostic] = []
        self.edges: list[CompiledEdge] = []
        self.inserted: set[str] = set()
        # Nodes next to an edge that failed: their "receives nothing" or "unreachable" findings
        # would only repeat the edge's own error.
        self.broken: set[str] = set()
        # The node a misspelt endpoint most likely meant, with the index of that edge's finding:
        # what its missing edge leaves wrong is folded under the misspelling, the cause.
        self.meant: dict[str, int] = {}

    def report(self, code: str, message: str, pointer: str, *, warning: bool = False,
               key: bool = False, hint: str | None = None) -> None:
        self.found.append(self.doc.diagnostic(
            code, message, pointer, key=key, hint=hint,
            severity=Severity.WARNING if warning else Severity.ERROR))

    def report_on(self, node_id: str, code: str, message: str, *,
                  warning: bool = False) -> None:
        """A finding about a node; folded under the misspelt edge endpoint that meant it."""
        cause = self.meant.get(node_id)
        if cause is None:
            self.report(code, message, f"/nodes/{node_id}", key=True, warning=warning)
            return
        found = self.found[cause]
        self.found[cause] = dataclasses.replace(
            found, consequences=(*found.consequences, message))

    # -- edges -------------------------------------------------------------------------------

    def _ref(self, text: str, direction: str, pointer: str) -> PortRef | None:
        node_id, _, port = text.strip().partition(".")
        port = port or ("out" if direction == "out" else "in")
        if node_id not in self.nodes:
            message = f"edge names no node {node_id!r}"
            if any(f.code == "edge.unknown-node" and f.pointer == pointer and
                   f.message == message for f in self.found):
                return None  # `a -> typo -> b` names it twice
            close = difflib.get_close_matches(node_id, list(self.nodes), n=1, cutoff=0.6)
            if close:
                self.meant.setdefault(close[0], len(self.found))
            self.report("edge.unknown-node", message, pointer,
                        hint=did_you_mean(node_id, self.nodes))
            return None
        ports = self.ports[node_id]
        if not ports:
            self.report("edge.tool-node",
                        f"{node_id!r} is a {self.nodes[node_id].type} node: tool nodes have no "
                        "ports; list it in a model node's `tools:`", pointer)
            return None
        if port not in ports:
            same_side = [p for p, spec in ports.items() if spec.direction == direction]
            self.report("edge.unknown-port", f"node {node_id!r} has no port {port!r}", pointer,
                        hint=did_you_mean(port, same_side) or f"its {direction} ports: "
                        f"{', '.join(same_side) or 'none'}")
            return None
        if ports[port].direction != direction:
            role = "send from" if direction == "out" else "send to"
            self.report("edge.wrong-direction",
                        f"cannot {role} {node_id}.{port}: it is an {ports[port].direction} port",
                        pointer)
            return None
        return PortRef(node_id, port)

    def parse_edges(self) -> list[tuple[PortRef, PortRef, int, Overflow, str]]:
        pairs: list[tuple[PortRef, PortRef, int, Overflow, str]] = []
        for index, edge in enumerate(self.spec.edges):
            pointer = join_pointer("/edges", index)
            if isinstance(edge, EdgeObjectSpec):
                steps = [edge.source, edge.to]
                capacity, overflow = edge.queue.capacity, Overflow(edge.queue.overflow)
            else:
                steps = _ARROW.split(edge.strip())
                capacity, overflow = QueueSpec().capacity, Overflow.BLOCK
            for left, right in zip(steps, steps[1:], strict=False):
                src = self._ref(left, "out", pointer)
                dst = self._ref(right, "in", pointer)
                if src and dst:
                    pairs.append((src, dst, capacity, overflow, pointer))
                else:
                    self.broken.update(t.strip().partition(".")[0] for t in (left, right))
        seen: dict[tuple[PortRef, PortRef], str] = {}
        unique = []
        for src, dst, capacity, overflow, pointer in pairs:
            if (src, dst) in seen:
                self.report("edge.duplicate", f"edge {src} -> {dst} is declared twice (also at "
                            f"{seen[(src, dst)]}); each frame would arrive twice", pointer)
                continue
            seen[(src, dst)] = pointer
            unique.append((src, dst, capacity, overflow, pointer))
        return unique

    def connect(self, pairs: list[tuple[PortRef, PortRef, int, Overflow, str]]) -> None:
        for src, dst, capacity, overflow, pointer in pairs:
            out_port = self.ports[src.node][src.port]
            in_port = self.ports[dst.node][dst.port]
            kinds = out_port.kinds & in_port.kinds
            if not kinds:
                self.report(
                    "edge.carries-nothing",
                    f"edge {src} -> {dst} carries nothing: {src} emits "
                    f"{', '.join(sorted(out_port.kinds))} but {dst} accepts "
                    f"{', '.join(sorted(in_port.kinds))}", pointer)
                self.broken.update((src.node, dst.node))
                continue
            if overflow is Overflow.DROP_OLDEST and "audio" not in kinds:
                self.report("edge.drop-oldest-not-audio",
                            f"drop_oldest would lose {', '.join(sorted(kinds))} frames: it is "
                            "allowed only on edges that carry audio", pointer)
            a, b = out_port.audio, in_port.audio
            if "audio" in kinds and a is not None and b is not None and a != b:
                reason = convertible(a, b)
                if reason:
                    self.report("edge.audio-mismatch",
                                f"edge {src} -> {dst} joins {a} to {b}, which cannot be "
                                f"converted: {reason}", pointer)
                    self.broken.update((src.node, dst.node))
                    continue
                self._insert_converter(src, dst, capacity, overflow, frozenset(kinds), pointer)
                continue
            self.edges.append(CompiledEdge(source=src, target=dst, capacity=capacity,
                                           overflow=overflow, kinds=frozenset(kinds),
                                           pointer=pointer))

    def _insert_converter(self, src: PortRef, dst: PortRef, capacity: int, overflow: Overflow,
                          kinds: frozenset[str], pointer: str) -> None:
        a = self.ports[src.node][src.port].audio
        b = self.ports[dst.node][dst.port].audio
        assert a is not None and b is not None  # callers checked both formats are concrete
        base = f"{src.node}_to_{dst.node}_convert"
        node_id, n = base, 2
        while node_id in self.nodes:
            node_id, n = f"{base}{n}", n + 1
        spec = AudioConvertSpec(type="audio.convert", input=a.as_spec(), output=b.as_spec())
        self.nodes[node_id] = spec
        self.ports[node_id] = ports_of(spec)
        self.inserted.add(node_id)
        conv_in, conv_out = PortRef(node_id, "in"), PortRef(node_id, "out")
        self.edges.append(CompiledEdge(source=src, target=conv_in, capacity=capacity,
                                       overflow=overflow, kinds=kinds, inserted=True,
                                       pointer=pointer))
        self.edges.append(CompiledEdge(source=conv_out, target=dst, capacity=capacity,
                                       overflow=overflow, kinds=kinds, inserted=True,
                                       pointer=pointer))

    # -- tools and entry ---------------------------------------------------------------------

    def tools(self) -> dict[str, tuple[str, ...]]:
        links: dict[str, tuple[str, ...]] = {}
        tool_ids = [k for k, v in self.nodes.items() if isinstance(v, ToolNodeSpec)]
        for node_id, node in self.spec.nodes.items():
            if not isinstance(node, OpenAINodeSpec):
                continue
            names: dict[str, str] = {}
            valid: list[str] = []
            for index, tool_id in enumerate(node.tools):
                pointer = join_pointer(f"/nodes/{node_id}/tools", index)
                target = self.nodes.get(tool_id)
                if target is None:
                    self.report("tool.unknown", f"no tool node {tool_id!r}", pointer,
                                hint=did_you_mean(tool_id, tool_ids))
                    continue
                if not isinstance(target, ToolNodeSpec):
                    self.report("tool.not-a-tool",
                                f"{tool_id!r} is a {target.type} node, not a tool", pointer)
                    continue
                if tool_id in valid:
                    self.report("tool.duplicate", f"tool {tool_id!r} is listed twice", pointer)
                    continue
                name = target.function_name(tool_id)
                if name in names:
                    self.report("tool.duplicate-name",
                                f"tools {names[name]!r} and {tool_id!r} both present the function "
                                f"name {name!r} to the model", pointer)
                    continue
                names[name] = tool_id
                valid.append(tool_id)
            links[node_id] = tuple(valid)
        used = {t for ids in links.values() for t in ids}
        # A tool the flow offers but no model lists is reported by the flow, at the state.
        flow = self.spec.flow
        if flow is not None:
            used.update(flow.global_tools)
            used.update(t for state in flow.states.values() for t in state.tools)
        for tool_id in tool_ids:
            if tool_id not in used:
                self.report("graph.unused-tool", f"tool node {tool_id!r} is in no model's "
                            "`tools:` list", f"/nodes/{tool_id}", warning=True, key=True)
        return links

    def entry(self) -> str | None:
        transports = [k for k, v in self.spec.nodes.items() if v.kind == "transport"]
        if not transports:
            self.report("graph.no-transport", "the spec has no transport node, so nothing can "
                        "start a session", "/nodes", key=True,
                        hint="add e.g. a transport.websocket or transport.text node")
            return None
        if len(transports) > 1:
            for extra in transports[1:]:
                self.report("graph.many-transports",
                            f"a spec has one entry transport; {transports[0]!r} is already one "
                            f"(serve another transport from its own spec)", f"/nodes/{extra}",
                            key=True)
        return transports[0]

    # -- graph shape -------------------------------------------------------------------------

    def shape(self, entry: str | None) -> None:
        import networkx as nx

        graph = nx.DiGraph()
        for node_id, ports in self.ports.items():
            for port in ports.values():
                graph.add_node(PortRef(node_id, port.name))
            if self.nodes[node_id].kind == "transport":
                continue
            for pin in ports.values():
                for pout in ports.values():
                    if pin.direction == "in" and pout.direction == "out":
                        graph.add_edge(PortRef(node_id, pin.name), PortRef(node_id, pout.name))
        pointer_of: dict[tuple[PortRef, PortRef], str] = {}
        for edge in self.edges:
            graph.add_edge(edge.source, edge.target)
            pointer_of[(edge.source, edge.target)] = edge.pointer
        for component in nx.strongly_connected_components(graph):
            if len(component) < 2:
                continue
            members = sorted({ref.node for ref in component})
            where = min((p for (s, t), p in pointer_of.items()
                         if s in component and t in component), default="/edges")
            self.report("graph.cycle", f"edges form a cycle through {' -> '.join(members)}; "
                        "frames would circulate forever", where)
        connected_in = {e.target for e in self.edges}
        connected_out = {e.source for e in self.edges}
        for node_id, ports in self.ports.items():
            if node_id in self.inserted or node_id in self.broken:
                continue
            for port in ports.values():
                ref = PortRef(node_id, port.name)
                if port.direction == "in" and port.required and ref not in connected_in:
                    self.report_on(node_id, "graph.dangling-input",
                                   f"{ref} receives nothing: connect an edge to it")
                if port.direction == "out" and ref not in connected_out:
                    self.report_on(node_id, "graph.unused-output",
                                   f"{ref} goes nowhere: its frames are dropped", warning=True)
        if entry is None:
            return
        node_graph = nx.DiGraph()
        node_graph.add_nodes_from(self.nodes)
        node_graph.add_edges_from((e.source.node, e.target.node) for e in self.edges)
        reachable = nx.descendants(node_graph, entry) | {entry}
        for node_id, node in self.spec.nodes.items():
            if node.kind not in ("tool", "transport", "events") and node_id not in reachable \
                    and node_id not in self.broken:
                self.report_on(node_id, "graph.unreachable", f"node {node_id!r} is not "
                               f"reachable from the entry transport {entry!r}")


def check_graph(doc: Document, spec: GraphSpec) -> tuple[GraphParts, list[Diagnostic]]:
    """Resolve and check the graph of a schema-valid spec. Returns the parts and every finding."""
    checker = _Checker(doc, spec)
    for node_id, node in spec.nodes.items():
        checker.found.extend(node_rule_diagnostics(doc, node_id, node))
    checker.connect(checker.parse_edges())
    tools = checker.tools()
    checker.found.extend(conversation_rules(doc, spec, tools))
    checker.found.extend(flow_rules(doc, spec, tools))
    entry = checker.entry()
    checker.shape(entry)
    parts = GraphParts(nodes=checker.nodes, edges=checker.edges, tools=tools, entry=entry,
                       inserted=checker.inserted)
    return parts, checker.found
