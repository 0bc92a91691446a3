"""What changed between two spec documents: one entry per changed leaf, as a JSON Pointer, with
the field's mutability class read from the JSON Schema (`x-flowspec-mutability`).

The documents compared are the specs as written (`${VAR}` references unresolved), so a diff never
holds a secret from the environment; values of fields the schema marks secret are masked too. A
change is `privileged` when it sets a code-bearing field (`x-flowspec-privileged`: a handler, a
URL, a file path), itself or anywhere inside a value it adds.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal

from flowspec.spec.load import join_pointer
from flowspec.spec.models.base import Mutability

MASK = "***"
Op = Literal["add", "remove", "replace"]


@dataclass(frozen=True, slots=True)
class Change:
    """One changed leaf. `old`/`new` are None for an added/removed value (see `op`)."""

    pointer: str
    op: Op
    old: Any
    new: Any
    mutability: Mutability
    secret: bool = False
    privileged: bool = False

    @property
    def node_id(self) -> str | None:
        parts = split_pointer(self.pointer)
        return parts[1] if len(parts) > 1 and parts[0] == "nodes" else None

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {"pointer": self.pointer, "op": self.op,
                                "mutability": self.mutability.value}
        if self.op != "add":
            body["old"] = MASK if self.secret else self.old
        if self.op != "remove":
            body["new"] = MASK if self.secret else self.new
        if self.privileged:
            body["privileged"] = True
        return body


def split_pointer(pointer: str) -> list[str]:
    return [p.replace("~1", "/").replace("~0", "~") for p in pointer.split("/")[1:]]


def diff(old: Any, new: Any) -> list[Change]:
    """Every changed leaf between two documents (plain JSON data), in document order. Mappings
    are compared key by key; lists and scalars as whole values (what merge patch replaces)."""
    from flowspec.spec.schema import build_schema

    schema = build_schema()
    found: list[Change] = []
    for pointer, op, before, after in _walk(old, new, ""):
        node_type = _node_type(pointer, old, new)
        tokens = split_pointer(pointer)
        info = classify(schema, tokens, node_type)
        privileged = op != "remove" and (info.privileged or any(
            classify(schema, [*tokens, *inner], _node_type(pointer, old, new, inner)).privileged
            for inner in _leaves(after)))
        found.append(Change(pointer, op, before, after, info.mutability, info.secret,
                            privileged))
    return found


def _leaves(value: Any) -> list[list[str]]:
    """The paths (below `value`) of the scalars inside a mapping or list `value`."""
    found: list[list[str]] = []
    stack: list[tuple[Any, list[str]]] = [(value, [])]
    while stack:
        item, path = stack.pop()
        if isinstance(item, dict):
            stack.extend((v, [*path, str(k)]) for k, v in item.items())
        elif isinstance(item, list):
            stack.extend((v, [*path, str(i)]) for i, v in enumerate(item))
        elif path:
            found.append(path)
    return found


def _walk(old: Any, new: Any, pointer: str) -> Iterator[tuple[str, Op, Any, Any]]:
    if isinstance(old, dict) and isinstance(new, dict):
        for key in [*new, *(k for k in old if k not in new)]:
            child = join_pointer(pointer, key)
            if key not in old:
                yield child, "add", None, new[key]
            elif key not in new:
                yield child, "remove", old[key], None
            else:
                yield from _walk(old[key], new[key], child)
    elif old != new or type(old) is not type(new):
        yield pointer, "replace", old, new


def _node_type(pointer: str, old: Any, new: Any, inner: list[str] | None = None) -> str | None:
    parts = [*split_pointer(pointer), *(inner or ())]
    if len(parts) < 2 or parts[0] != "nodes":
        return None
    for doc in (new, old):
        node = (doc.get("nodes") or {}).get(parts[1]) if isinstance(doc, dict) else None
        if isinstance(node, dict) and isinstance(node.get("type"), str):
            return str(node["type"])
    return None


@dataclass(frozen=True, slots=True)
class FieldInfo:
    """What the schema says of the value at a pointer: its mutability class (the innermost
    annotation on the way down; structural when none), and whether it is secret or privileged."""

    mutability: Mutability = Mutability.STRUCTURAL
    secret: bool = False
    privileged: bool = False


_CLASSIFIED: dict[tuple[int, tuple[str, ...], str | None], tuple[Any, FieldInfo]] = {}
_CLASSIFIED_LIMIT = 4096


def classify(schema: dict[str, Any], tokens: list[str],
             node_type: str | None = None) -> FieldInfo:
    """The `FieldInfo` of the value at `tokens` in documents of `schema` (remembered: a live
    patch classifies the same few places again and again)."""
    key = (id(schema), tuple(tokens), node_type)
    known = _CLASSIFIED.get(key)
    if known is not None and known[0] is schema:
        return known[1]
    if len(_CLASSIFIED) >= _CLASSIFIED_LIMIT:
        _CLASSIFIED.clear()
    info = _classify(schema, tokens, node_type)
    _CLASSIFIED[key] = (schema, info)
    return info


def _classify(schema: dict[str, Any], tokens: list[str], node_type: str | None) -> FieldInfo:
    definitions = schema.get("definitions", {})
    current = [schema]
    found = FieldInfo()
    for depth, token in enumerate(tokens):
        kind = node_type if depth == 2 and tokens[0] == "nodes" else None
        nxt = [child for candidate in _expand(current, definitions, node_type=kind)
               if (child := _child(candidate, token)) is not None]
        if not nxt:
            break
        for candidate in [*nxt, *_expand(nxt, definitions)]:
            if "x-flowspec-mutability" in candidate:
                found = FieldInfo(Mutability(candidate["x-flowspec-mutability"]),
                                  bool(candidate.get("x-flowspec-secret")),
                                  bool(candidate.get("x-flowspec-privileged")))
                break
        current = nxt
    return found


_JSON_TYPES = {str: "string", bool: "boolean", int: "integer", float: "number",
               type(None): "null", list: "array", dict: "object"}


def value_types(schema: dict[str, Any], tokens: list[str],
                node_type: str | None = None) -> set[str] | None:
    """The JSON types the schema allows at `tokens` (`integer` counts as a `number` too), or
    None when the schema does not know the place."""
    definitions = schema.get("definitions", {})
    current = [schema]
    for depth, token in enumerate(tokens):
        kind = node_type if depth == 2 and tokens[0] == "nodes" else None
        current = [child for candidate in _expand(current, definitions, node_type=kind)
                   if (child := _child(candidate, token)) is not None]
        if not current:
            return None
    found: set[str] = set()
    for candidate in _expand(current, definitions):
        declared = candidate.get("type")
        found.update([declared] if isinstance(declared, str) else declared or [])
        for value in [candidate["const"]] if "const" in candidate else candidate.get("enum", []):
            found.add(_JSON_TYPES.get(type(value), "string"))
    if "integer" in found:
        found.add("number")
    return found or None


def _child(schema: dict[str, Any], token: str) -> dict[str, Any] | None:
    properties = schema.get("properties")
    if isinstance(properties, dict) and token in properties:
        child = properties[token]
        return child if isinstance(child, dict) else None
    extra = schema.get("additionalProperties")
    if isinstance(extra, dict):
        return extra
    items = schema.get("items")
    if token.isdigit() and isinstance(items, dict):
        return items
    return None


def _expand(schemas: list[dict[str, Any]], definitions: dict[str, Any], *,
            node_type: str | None = None) -> list[dict[str, Any]]:
    """Resolve `$ref`s and flatten `allOf`/`anyOf`/`oneOf` into the schemas a value may match;
    with `node_type`, keep only the node branch whose `type` is that constant."""
    out: list[dict[str, Any]] = []
    stack = list(schemas)
    seen = 0
    while stack and seen < 200:
        seen += 1
        schema = stack.pop(0)
        ref = schema.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/definitions/"):
            target = definitions.get(ref.rsplit("/", 1)[1])
            if isinstance(target, dict):
                stack.append(target)
            continue
        if node_type is not None:
            const = ((schema.get("properties") or {}).get("type") or {}).get("const")
            if const is not None and const != node_type:
                continue
        stack.extend(b for key in ("allOf", "anyOf", "oneOf") for b in schema.get(key, [])
                     if isinstance(b, dict))
        out.append(schema)
    return out


def mask_secrets(data: Any) -> tuple[Any, list[str]]:
    """`data` with the values of secret fields (written literally, not as `${VAR}`) masked, and
    those literal values, so a caller can mask them in the text too."""
    from flowspec.spec.schema import build_schema

    schema = build_schema()
    found: list[str] = []

    def walk(value: Any, tokens: list[str]) -> Any:
        if isinstance(value, dict):
            return {k: walk(v, [*tokens, k]) for k, v in value.items()}
        if isinstance(value, list):
            return [walk(v, [*tokens, str(i)]) for i, v in enumerate(value)]
        if isinstance(value, str) and "${" not in value and len(tokens) > 2:
            node = (data.get("nodes") or {}).get(tokens[1]) if tokens[0] == "nodes" else None
            node_type = node.get("type") if isinstance(node, dict) else None
            if classify(schema, tokens, node_type).secret:
                found.append(value)
                return MASK
        return value

    return walk(data, []), found
