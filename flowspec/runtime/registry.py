"""The node registry: spec `type` string -> node factory.

A registry is an object passed to the executor, so two graphs in one process (or two tests) can
use different node sets without resetting anything global. `DEFAULT_REGISTRY` answers every type
a node family declares (`flowspec.families`: the built-ins and installed packages), with the
implementation its family names; `Registry(parent=DEFAULT_REGISTRY)` layers test nodes on top.
Factories may be given as `"module:attribute"` strings, imported on first use, so that importing
flowspec does not import every provider's node.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, TypeVar

from flowspec.errors import UsageError
from flowspec.runtime.node import NodeFactory

if TYPE_CHECKING:
    from flowspec.families.registry import FamilyRegistry

F = TypeVar("F", bound=NodeFactory)


class Registry:
    def __init__(self, *, parent: Registry | None = None,
                 families: Callable[[], FamilyRegistry] | None = None) -> None:
        """`families` (called when a type is first looked up, so plugins load only when a
        session needs a node) supplies the types no `register` call gave."""
        self._parent = parent
        self._families = families
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
        for registry in self._chain():
            entry = registry._factories.get(node_type)
            if entry is None:
                entry = registry._declared(node_type)
            if entry is not None:
                if isinstance(entry, str):
                    entry = _import(node_type, entry)
                registry._factories[node_type] = entry
                return entry
        known = ", ".join(sorted(self)) or "none"
        raise UsageError(f"No node implementation for type {node_type!r} (known: {known}).")

    def __contains__(self, node_type: object) -> bool:
        return any(node_type in r._factories or node_type in r._declared_types()
                   for r in self._chain())

    def __iter__(self) -> Iterator[str]:
        seen: set[str] = set()
        for registry in self._chain():
            for name in (*registry._factories, *registry._declared_types()):
                if name not in seen:
                    seen.add(name)
                    yield name

    def _declared(self, node_type: str) -> NodeFactory | str | None:
        if self._families is None or node_type not in self._families():
            return None
        entry: NodeFactory | str = self._families().implementation(node_type)
        return entry

    def _declared_types(self) -> tuple[str, ...]:
        return self._families().types if self._families is not None else ()

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


def _default_families() -> FamilyRegistry:
    from flowspec.families.registry import default_families

    return default_families()


DEFAULT_REGISTRY = Registry(families=_default_families)
"""The executor's default: every type a node family declares."""
