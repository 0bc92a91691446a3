"""The compiled graph: the immutable, checked template every session is instantiated from.

The executor consumes only this module's types: node specs by id, port-level edges with their queue
options, tool links, and the entry transport. Converter nodes the compiler inserted are ordinary
nodes here (`inserted` names them) so the executor needs no special case for them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING

from flowspec.errors import Diagnostic

if TYPE_CHECKING:
    from flowspec.spec.models.base import NodeSpec
    from flowspec.spec.models.graph import GraphSpec


class Overflow(StrEnum):
    """What an edge does when its queue is full: wait for room, or drop the oldest data frame."""

    BLOCK = "block"
    DROP_OLDEST = "drop_oldest"


DEFAULT_CAPACITY = 128


@dataclass(frozen=True, slots=True)
class PortRef:
    node: str
    port: str

    def __str__(self) -> str:
        return f"{self.node}.{self.port}"


@dataclass(frozen=True, slots=True, kw_only=True)
class CompiledEdge:
    """One directed, port-level edge; `inserted` marks edges added around converters."""

    source: PortRef
    target: PortRef
    capacity: int = DEFAULT_CAPACITY
    overflow: Overflow = Overflow.BLOCK
    kinds: frozenset[str] = frozenset()
    inserted: bool = False
    pointer: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class CompiledGraph:
    """A validated, checked graph. Treat as immutable; build a new one for every change."""

    name: str
    spec: GraphSpec
    nodes: Mapping[str, NodeSpec]
    edges: tuple[CompiledEdge, ...]
    tools: Mapping[str, tuple[str, ...]]
    entry: str | None
    inserted: frozenset[str] = frozenset()
    diagnostics: tuple[Diagnostic, ...] = ()
    content_hash: str = ""
    version: int = 1
    source: str = "<spec>"
    _out: dict[str, tuple[CompiledEdge, ...]] = field(default_factory=dict, repr=False)
    _in: dict[str, tuple[CompiledEdge, ...]] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        outgoing: dict[str, list[CompiledEdge]] = {}
        incoming: dict[str, list[CompiledEdge]] = {}
        for edge in self.edges:
            outgoing.setdefault(edge.source.node, []).append(edge)
            incoming.setdefault(edge.target.node, []).append(edge)
        self._out.update({k: tuple(v) for k, v in outgoing.items()})
        self._in.update({k: tuple(v) for k, v in incoming.items()})

    @property
    def boundaries(self) -> frozenset[str]:
        """Transport nodes: their `in` and `out` carry independent streams, so an interrupt
        reaches a transport but does not travel on through it back into the graph."""
        return frozenset(k for k, v in self.nodes.items() if v.kind == "transport")

    def edges_from(self, node_id: str) -> tuple[CompiledEdge, ...]:
        return self._out.get(node_id, ())

    def edges_to(self, node_id: str) -> tuple[CompiledEdge, ...]:
        return self._in.get(node_id, ())

    def downstream(self, node_id: str) -> set[str]:
        """Every node reachable from `node_id` along edges (not including itself unless cyclic)."""
        seen: set[str] = set()
        stack = [e.target.node for e in self.edges_from(node_id)]
        while stack:
            current = stack.pop()
            if current in seen:
                continue
            seen.add(current)
            stack.extend(e.target.node for e in self.edges_from(current))
        return seen
