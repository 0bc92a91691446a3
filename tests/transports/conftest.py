"""A small stand-in for a model node, and a session runner for transports under test."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from flowspec.runtime import Bus, Context, Executor, Registry
from flowspec.runtime.node import NodeFactory
from flowspec.runtime.session import Session
from flowspec.spec.models.base import NodeSpec
from flowspec.testing import EchoNode, graph, make_registry


def echo_registry(node_type: str, factory: NodeFactory) -> Registry:
    registry = make_registry()
    registry.register(node_type, factory)
    return registry


@asynccontextmanager
async def echo_session(spec: NodeSpec, factory: Callable[[Context], object],
                       bus: Bus | None = None) -> AsyncIterator[tuple[Session, EchoNode]]:
    """A running session of `caller -> llm -> caller` with `spec` as the caller transport (built
    by `factory`) and an `EchoNode` as the model."""
    compiled = graph({"caller": spec, "llm": "test.echo"}, ["caller -> llm -> caller"],
                     entry="caller")
    registry = echo_registry(spec.type, factory)  # type: ignore[arg-type]
    executor = Executor(registry=registry, bus=bus)
    async with executor.session(compiled) as session:
        llm = session.node("llm")
        assert isinstance(llm, EchoNode)
        yield session, llm

