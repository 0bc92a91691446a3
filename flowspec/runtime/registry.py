"""The node registry: spec `type` string -> node factory.

A registry is an object passed to the executor, so two graphs in one process (or two tests) can
use different node sets without resetting anything global. `DEFAULT_REGISTRY` is the one node
modules register into; `Registry(parent=DEFAULT_REGISTRY)` layers test or plugin nodes on top.
Factories may be given as `"module:attribute"` strings, imported on first use, so that importing
flowspec does not import every provider's node.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator
from typing import TypeVar

from flowspec.errors import UsageError
from flowspec.runtime.node import NodeFactory

F = TypeVar("F", bound=NodeFactory)


class Registry:
    def __init__(self, *, parent: Registry | None = None) -> None:
        self._parent = parent
        self._factories: dict[str, NodeFactory | str] = {}

    def register(self, node_type: str, factory: NodeFactory | str) -> None:
        """Map `node_type` to `factory` (or to its `"module:attribute"` path).

        Raises UsageError when this registry already maps `node_type`; a parent's entry may be
        overridden."""
        if node_type in self._factories:
            raise UsageError(f"Node type {node_type!r} is already registered.")
        self._factories[node_type] = factory

    def node(self, node_type: str) -> Callable[[F], F]:
        """Class decorator form of `register`."""

        def decorate(factory: F) -> F:
            self.register(node_type, factory)
            return factory

        return decorate

    def resolve(self, node_type: str) -> NodeFactory:
        """The factory for `node_type`. Raises UsageError, naming the known types, if unknown."""
        registry: Registry | None = self
        while registry is not None:
            entry = registry._factories.get(node_type)
            if entry is not None:
                if isinstance(entry, str):
                    entry = _import(node_type, entry)
                    registry._factories[node_type] = entry
                return entry
            registry = registry._parent
        known = ", ".join(sorted(self)) or "none"
        raise UsageError(f"No node implementation for type {node_type!r} (known: {known}).")

    def __contains__(self, node_type: object) -> bool:
        return any(node_type in r._factories for r in self._chain())

    def __iter__(self) -> Iterator[str]:
        seen: set[str] = set()
        for registry in self._chain():
            for name in registry._factories:
                if name not in seen:
                    seen.add(name)
                    yield name

    def _chain(self) -> Iterator[Registry]:
        registry: Registry | None = self
        while registry is not None:
            yield registry
            registry = registry._parent


def _import(node_type: str, path: str) -> NodeFactory:
    module_name, _, attribute = path.partition(":")
    try:
        factory: NodeFactory = getattr(importlib.import_module(module_name), attribute)
    except (ImportError, AttributeError) as exc:
        raise UsageError(f"Node type {node_type!r} points at {path!r}, which cannot be imported: "
                         f"{exc}.") from exc
    return factory


BUILTIN_NODES: dict[str, str] = {
    "openai.realtime": "flowspec.nodes.openai_realtime.node:RealtimeNode",
    "openai.realtime_beta": "flowspec.nodes.openai_realtime.node:RealtimeNode",
    "openai.responses": "flowspec.nodes.openai_responses.node:ResponsesNode",
    "transport.websocket": "flowspec.transports.websocket:WebsocketTransport",
    "transport.twilio": "flowspec.transports.twilio:TwilioTransport",
    "transport.text": "flowspec.transports.text:TextTransport",
    "transport.console": "flowspec.transports.console:ConsoleTransport",
    "transport.wav": "flowspec.transports.wav:WavTransport",
    "tool.python": "flowspec.nodes.tools:PythonToolNode",
    "tool.http": "flowspec.nodes.tools:HttpToolNode",
    "audio.convert": "flowspec.nodes.audio_nodes:ConvertNode",
    "audio.record": "flowspec.nodes.audio_nodes:RecordNode",
    "log.transcript": "flowspec.nodes.logs:TranscriptLogNode",
}
"""Every spec node type and its implementation, imported on first use."""

DEFAULT_REGISTRY = Registry()
"""The registry node modules register into, and the executor's default."""
for _type, _path in BUILTIN_NODES.items():
    DEFAULT_REGISTRY.register(_type, _path)
