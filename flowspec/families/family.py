"""A node family: everything about one kind of node, declared once.

A family names its spec models (one `type` each), how a node's ports follow from its spec, the
rules `flowspec validate` applies beyond the schema, its implementation (a `"module:attr"` path
imported when a session first needs it), its editor snippets, and, when it has them, the path a
live change takes to running sessions and the endpoints the offline emulator stands in for.
Built-in families and those of installed packages are declared alike (`flowspec.families.builtin`,
examples/plugin/). A declaration with a piece missing is refused when it is made, naming the
family and the piece: nothing falls back to a default.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, Literal, Protocol, TypeVar, get_args, get_origin

from flowspec.errors import UsageError
from flowspec.spec.models.base import Mutability, NodeSpec

if TYPE_CHECKING:
    from flowspec.errors import Diagnostic
    from flowspec.reload.plan import Applies, NodeAction
    from flowspec.spec.compiled import CompiledGraph
    from flowspec.spec.load import Document
    from flowspec.spec.ports import PortSpec

S = TypeVar("S", bound=NodeSpec)

Implementation = str | Callable[..., Any]
"""A `"module:attribute"` path to a node factory (imported on first use), or the factory."""


class FamilyError(UsageError):
    """A node family declared with a piece missing or malformed, a node type declared twice, or a
    node type no family declares."""


class LivePath(Protocol):
    """How a change to a running bot reaches the live sessions of a node of this family.

    Without one, every change to such a node reaches new sessions only."""

    def applies(self, spec: NodeSpec, field: str,
                mutability: Mutability) -> tuple[Applies, str] | None:
        """Where a change under the node's top-level `field` applies (`mutability` is `live` or
        `until_first_audio`), with the reason shown in plans; None when this family has no live
        path for that field."""
        ...

    def action(self, node_id: str, old: CompiledGraph, new: CompiledGraph,
               retooled: Sequence[str]) -> NodeAction | None:
        """What live sessions of `node_id` receive when `old` becomes `new` (same type, same tool
        wiring); `retooled` lists the tools it calls whose definitions changed. None: nothing."""
        ...


@dataclass(frozen=True, slots=True)
class EmulatorEndpoints:
    """Where a node of a family that talks to OpenAI points when `flowspec serve` runs it against
    the local emulator (no `OPENAI_API_KEY`, no key of its own, its URLs left at their defaults).

    `urls` maps each endpoint field to its emulator URL, where `{http}` and `{ws}` stand for the
    emulator's HTTP and WebSocket `/v1` bases; `key_field` gets a placeholder key."""

    urls: Mapping[str, str]
    key_field: str = "api_key"


def no_rules(doc: Document, base: str, spec: NodeSpec) -> Iterator[Diagnostic]:
    """The rules of a family the schema says everything about: none."""
    return iter(())


def no_ports(spec: NodeSpec) -> list[PortSpec]:
    """The ports of a family no edge reaches (tools: models call them by `tools:`): none."""
    return []


NO_RULES = no_rules
NO_PORTS = no_ports


class _Missing:
    def __repr__(self) -> str:
        return "<missing>"


_MISSING: Any = _Missing()

_REQUIRED = {
    "models": "models (the spec model of each node type)",
    "ports": "ports (ports=NO_PORTS if no edge reaches it)",
    "rules": "rules (rules=NO_RULES if the schema says everything)",
    "implementation": "implementation (a 'module:attribute' node factory)",
    "snippets": "snippets (one editor starter body per node type)",
}


@dataclass(frozen=True, slots=True, kw_only=True)
class NodeFamily(Generic[S]):
    """One node family. Every piece but `live` and `emulator` must be given.

    `implementation` is one factory for every type of the family or a mapping type → factory;
    `snippets` holds one body per type, each with its `type`. Raises FamilyError, naming the
    family and what is missing or wrong."""

    name: str
    models: tuple[type[S], ...] = _MISSING
    ports: Callable[[S], list[PortSpec]] = _MISSING
    rules: Callable[[Document, str, S], Iterable[Diagnostic]] = _MISSING
    implementation: Implementation | Mapping[str, Implementation] = _MISSING
    snippets: Sequence[Mapping[str, Any]] = _MISSING
    live: LivePath | None = None
    emulator: EmulatorEndpoints | None = None

    def __post_init__(self) -> None:
        missing = [text for piece, text in _REQUIRED.items() if getattr(self, piece) is _MISSING]
        if missing:
            raise FamilyError(f"Node family {self.name!r} cannot be registered: it declares no "
                              f"{'; no '.join(missing)}.")
        problems = list(self._problems())
        if problems:
            raise FamilyError(f"Node family {self.name!r} cannot be registered: "
                              f"{'; '.join(problems)}.")

    def _problems(self) -> Iterator[str]:
        if not self.models:
            yield "its models are empty"
            return
        types: list[str] = []
        for model in self.models:
            node_type = _declared_type(model)
            if node_type is None:
                yield (f"model {getattr(model, '__name__', model)!r} is not a NodeSpec with "
                       "`type: Literal['...']`")
            else:
                types.append(node_type)
        if len(set(types)) != len(types):
            yield f"its models declare one type twice ({', '.join(types)})"
        for piece in ("ports", "rules"):
            if not callable(getattr(self, piece)):
                yield f"{piece} is not callable"
        if self.live is not None and not all(callable(getattr(self.live, method, None))
                                             for method in ("applies", "action")):
            yield "its live path has no `applies` and `action` methods"
        if isinstance(self.implementation, Mapping):
            if set(self.implementation) != set(types):
                yield (f"its implementation mapping covers {sorted(self.implementation)}, not "
                       f"its types {sorted(types)}")
            yield from _implementation_problems(self.implementation.values())
        else:
            yield from _implementation_problems([self.implementation])
        if self.emulator is not None:
            wanted = {self.emulator.key_field, *self.emulator.urls}
            for model in self.models:
                absent = sorted(wanted - set(getattr(model, "model_fields", {})))
                if absent:
                    yield (f"its emulator endpoints name fields model "
                           f"{getattr(model, '__name__', model)!r} lacks: {', '.join(absent)}")
        snippet_types = [s.get("type") if isinstance(s, Mapping) else None
                         for s in self.snippets]
        if sorted(map(str, snippet_types)) != sorted(types):
            yield (f"its snippets are for types {snippet_types}, not one for each of its types "
                   f"{types}")

    @property
    def types(self) -> tuple[str, ...]:
        """The `type` strings of this family's nodes, in declaration order."""
        return tuple(str(_declared_type(model)) for model in self.models)

    def model(self, node_type: str) -> type[S]:
        return self.models[self.types.index(node_type)]

    def implementation_of(self, node_type: str) -> Implementation:
        if isinstance(self.implementation, Mapping):
            return self.implementation[node_type]
        return self.implementation

    def snippet(self, node_type: str) -> dict[str, Any]:
        """A fresh copy of the editor starter body of `node_type`."""
        return next(copy.deepcopy(dict(s)) for s in self.snippets if s["type"] == node_type)


def _implementation_problems(entries: Iterable[object]) -> Iterator[str]:
    for entry in entries:
        if isinstance(entry, str):
            module, colon, attribute = entry.partition(":")
            if not (module and colon and attribute):
                yield f"implementation {entry!r} is not 'module:attribute'"
        elif not callable(entry):
            yield f"implementation {entry!r} is neither 'module:attribute' nor callable"


def _declared_type(model: object) -> str | None:
    """The one string of a model's `type: Literal[...]`, or None when it has no such field."""
    if not isinstance(model, type) or not issubclass(model, NodeSpec):
        return None
    field = model.model_fields.get("type")
    annotation = field.annotation if field is not None else None
    if get_origin(annotation) is not Literal:
        return None
    values = get_args(annotation)
    return values[0] if len(values) == 1 and isinstance(values[0], str) else None
