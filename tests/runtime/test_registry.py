from __future__ import annotations

import pytest

from flowspec.errors import UsageError
from flowspec.runtime.registry import DEFAULT_REGISTRY, Registry
from flowspec.testing import PassthroughNode, RecorderNode, make_registry


def test_resolve_registered_and_inherited_types() -> None:
    parent = Registry()
    parent.register("a", PassthroughNode)
    child = Registry(parent=parent)
    child.register("b", RecorderNode)
    assert child.resolve("a") is PassthroughNode
    assert child.resolve("b") is RecorderNode
    assert "a" in child and "b" in child and "b" not in parent
    assert sorted(child) == ["a", "b"]


def test_child_may_override_a_parent_but_not_itself() -> None:
    parent = Registry()
    parent.register("a", PassthroughNode)
    child = Registry(parent=parent)
    child.register("a", RecorderNode)
    assert child.resolve("a") is RecorderNode
    with pytest.raises(UsageError, match="already registered"):
        child.register("a", PassthroughNode)


def test_unknown_type_names_the_known_ones() -> None:
    registry = make_registry(parent=None)
    with pytest.raises(UsageError, match="test.passthrough"):
        registry.resolve("openai.realtim")


def test_lazy_entries_import_on_first_use() -> None:
    registry = Registry()
    registry.register("lazy", "flowspec.testing:RecorderNode")
    registry.register("missing", "flowspec.testing:NoSuchNode")
    assert registry.resolve("lazy") is RecorderNode
    with pytest.raises(UsageError, match="cannot be imported"):
        registry.resolve("missing")


def test_decorator_registers_and_default_registry_is_untouched_by_tests() -> None:
    registry = Registry()

    @registry.node("x")
    class X(PassthroughNode):
        pass

    assert registry.resolve("x") is X
    assert "x" not in DEFAULT_REGISTRY
    assert "test.passthrough" not in DEFAULT_REGISTRY


def test_every_spec_node_type_has_an_implementation() -> None:
    from flowspec.spec.models.graph import NODE_TYPES

    assert set(NODE_TYPES) <= set(DEFAULT_REGISTRY)
    for node_type in NODE_TYPES:
        factory = DEFAULT_REGISTRY.resolve(node_type)
        assert all(callable(getattr(factory, m, None)) for m in ("start", "handle", "stop"))


def test_a_layered_registry_answers_family_types_and_its_own() -> None:
    registry = make_registry()
    assert "openai.realtime" in registry and "test.recorder" in registry
    assert {"openai.realtime", "test.recorder"} <= set(registry)
    from flowspec.nodes.openai_realtime.node import RealtimeNode

    assert registry.resolve("openai.realtime_beta") is RealtimeNode
