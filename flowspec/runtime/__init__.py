"""The runtime: frames move along a compiled graph's edges inside independent sessions."""

from flowspec.runtime.bus import Bus, BusEvent
from flowspec.runtime.executor import Executor
from flowspec.runtime.node import Context, Node, NodeFactory
from flowspec.runtime.registry import DEFAULT_REGISTRY, Registry
from flowspec.runtime.session import Session

__all__ = [
    "DEFAULT_REGISTRY",
    "Bus",
    "BusEvent",
    "Context",
    "Executor",
    "Node",
    "NodeFactory",
    "Registry",
    "Session",
]
