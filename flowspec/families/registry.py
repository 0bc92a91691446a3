"""The registry of node families: every node type, the family declaring it and where it came from.

`default_families()` holds the built-in families and those of installed packages, which declare
them under the entry-point group `flowspec.nodes` (the entry point names a `NodeFamily` or a list
of them). Both go through `FamilyRegistry.register`, so a type is declared once: a plugin that
fails to import, or declares a type already declared, is left out and listed in `problems` with
its distribution's name, and everything else keeps working. The spec union, the schema, the
graph checks, the runtime, the reload planner and `flowspec nodes` all read this one registry.

Plugins load when `flowspec.spec.models.graph` builds the spec's node union from them, so a
plugin's family module may import the spec building blocks (`flowspec.spec.models.base`,
`flowspec.spec.ports`, `flowspec.families`) but not the document model itself.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Any

from flowspec import __version__
from flowspec.families.family import FamilyError, Implementation, NodeFamily
from flowspec.spec.models.base import NodeSpec

if TYPE_CHECKING:
    from importlib.metadata import EntryPoint

    from flowspec.errors import Diagnostic
    from flowspec.spec.load import Document
    from flowspec.spec.models.graph import GraphSpec
    from flowspec.spec.ports import PortSpec

ENTRY_POINT_GROUP = "flowspec.nodes"


@dataclass(frozen=True, slots=True)
class Origin:
    """The package a family came from: flowspec itself or an installed distribution."""

    package: str
    version: str

    def __str__(self) -> str:
        return f"{self.package} {self.version}"


FLOWSPEC = Origin("flowspec", __version__)


@dataclass(frozen=True, slots=True)
class PluginProblem:
    """A plugin entry point that was left out, and why."""

    package: str
    version: str
    entry_point: str
    """As declared: `name = module:attribute`."""
    message: str

    def __str__(self) -> str:
        return (f"node plugin {self.package} {self.version} ({self.entry_point}) is not loaded: "
                f"{self.message}")

    def to_json(self) -> dict[str, str]:
        return {"package": self.package, "version": self.version,
                "entry_point": self.entry_point, "error": self.message}


@dataclass(frozen=True, slots=True)
class Registered:
    family: NodeFamily[Any]
    origin: Origin


class FamilyRegistry:
    """Node families by type, in registration order (built-ins first)."""

    def __init__(self) -> None:
        self._entries: list[Registered] = []
        self._by_type: dict[str, Registered] = {}
        self._models: tuple[type[NodeSpec], ...] | None = None
        self.problems: list[PluginProblem] = []

    def register(self, *families: NodeFamily[Any], origin: Origin = FLOWSPEC) -> None:
        """Add `families`, all or none. Raises FamilyError when one is not a NodeFamily, or a
        type is already declared (here or among `families`), naming who declared it."""
        claimed: dict[str, str] = {}
        for family in families:
            if not isinstance(family, NodeFamily):
                raise FamilyError(f"{family!r} is not a NodeFamily.")
            for node_type in family.types:
                if node_type in self._by_type:
                    first = self._by_type[node_type]
                    raise FamilyError(f"Node family {family.name!r} declares type {node_type!r}, "
                                      f"which family {first.family.name!r} of {first.origin} "
                                      "already declares.")
                if node_type in claimed:
                    raise FamilyError(f"Node families {claimed[node_type]!r} and "
                                      f"{family.name!r} both declare type {node_type!r}.")
                claimed[node_type] = family.name
        for family in families:
            entry = Registered(family, origin)
            self._entries.append(entry)
            for node_type in family.types:
                self._by_type[node_type] = entry
        self._models = None

    def load_plugins(self, entry_points: Iterable[EntryPoint] | None = None) -> None:
        """Register the families of installed packages (or of `entry_points`), in package
        order; a plugin that cannot be loaded goes to `problems` instead."""
        if entry_points is None:
            from importlib.metadata import entry_points as installed

            entry_points = installed(group=ENTRY_POINT_GROUP)
        found = sorted(((_origin(ep), ep) for ep in entry_points),
                       key=lambda pair: (pair[0].package.lower(), pair[1].name))
        for origin, ep in found:
            declared = f"{ep.name} = {ep.value}"
            try:
                loaded = ep.load()
            except Exception as exc:  # noqa: BLE001 - a plugin failing at import is reported
                self._problem(origin, declared, f"importing it failed: {type(exc).__name__}: "
                              f"{exc}")
                continue
            try:
                self.register(*_declared_families(loaded, declared), origin=origin)
            except FamilyError as exc:
                self._problem(origin, declared, str(exc))

    def _problem(self, origin: Origin, declared: str, message: str) -> None:
        self.problems.append(PluginProblem(origin.package, origin.version, declared, message))

    # -- lookups ------------------------------------------------------------------------------

    def __contains__(self, node_type: object) -> bool:
        return node_type in self._by_type

    def __iter__(self) -> Iterator[Registered]:
        return iter(self._entries)

    @property
    def types(self) -> tuple[str, ...]:
        return tuple(self._by_type)

    def family(self, node_type: str) -> NodeFamily[Any]:
        """The family declaring `node_type`. Raises FamilyError, naming the known types."""
        entry = self._by_type.get(node_type)
        if entry is None:
            known = ", ".join(self._by_type) or "none"
            raise FamilyError(f"No node family declares type {node_type!r} (known: {known}).")
        return entry.family

    def origin(self, node_type: str) -> Origin:
        self.family(node_type)
        return self._by_type[node_type].origin

    def models(self) -> tuple[type[NodeSpec], ...]:
        """Every spec model, in registration order: the members of the spec's node union."""
        if self._models is None:
            self._models = tuple(m for entry in self._entries for m in entry.family.models)
        return self._models

    def model(self, node_type: str) -> type[NodeSpec]:
        model: type[NodeSpec] = self.family(node_type).model(node_type)
        return model

    def ports_of(self, spec: NodeSpec) -> dict[str, PortSpec]:
        return {port.name: port for port in self.family(spec.type).ports(spec)}

    def rules_of(self, doc: Document, base: str, spec: NodeSpec) -> list[Diagnostic]:
        return list(self.family(spec.type).rules(doc, base, spec))

    def snippet(self, node_type: str) -> dict[str, Any]:
        return self.family(node_type).snippet(node_type)

    def implementation(self, node_type: str) -> Implementation:
        return self.family(node_type).implementation_of(node_type)

    def graph_model(self) -> type[GraphSpec]:
        """The spec document model over this registry's node types."""
        from flowspec.spec.models.graph import graph_model

        return graph_model(self.models())


def _origin(ep: EntryPoint) -> Origin:
    dist = getattr(ep, "dist", None)
    if dist is None:
        return Origin(ep.value.partition(":")[0].split(".")[0], "(unknown version)")
    return Origin(str(dist.metadata["Name"] or dist.name), str(dist.version))


def _declared_families(loaded: object, declared: str) -> Sequence[NodeFamily[Any]]:
    if isinstance(loaded, NodeFamily):
        return (loaded,)
    if isinstance(loaded, Iterable) and not isinstance(loaded, str | bytes | Mapping):
        families = tuple(loaded)
        if families and all(isinstance(f, NodeFamily) for f in families):
            return families
    raise FamilyError(f"the entry point {declared!r} names {type(loaded).__name__!r}, not a "
                      "NodeFamily or a list of them.")


@cache
def builtin_families() -> FamilyRegistry:
    """The families flowspec itself declares (what the committed schema describes)."""
    from flowspec.families.builtin import BUILTIN_FAMILIES

    registry = FamilyRegistry()
    registry.register(*BUILTIN_FAMILIES)
    return registry


@cache
def default_families() -> FamilyRegistry:
    """The built-in families and those of installed packages, loaded once per process."""
    from flowspec.families.builtin import BUILTIN_FAMILIES

    registry = FamilyRegistry()
    registry.register(*BUILTIN_FAMILIES)
    registry.load_plugins()
    return registry
