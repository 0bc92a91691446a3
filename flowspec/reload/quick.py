"""Whole-spec validation fast enough for a live patch (DESIGN §11: patch → `session.update` in
≤ 5 ms), with the same verdict as `flowspec validate`.

The full compile spends most of its time in the JSON Schema's node `oneOf`, where every node is
tried against every node kind, and in re-reading YAML for positions. Here each node is checked
against the one kind its `type` names (the branches are told apart by that constant, so "valid
against its own branch" is exactly "valid against the `oneOf`"), unchanged nodes are remembered,
and no text is parsed. Anything that does not pass returns None: the caller then compiles the
text the slow way, which gives the located errors `validate` gives.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from functools import cache
from typing import Any

from flowspec.errors import Diagnostic, Severity
from flowspec.spec.compile import content_hash
from flowspec.spec.compiled import CompiledGraph
from flowspec.spec.load import Document, interpolate

_MEMO_LIMIT = 512
_valid_nodes: dict[str, bool] = {}


@cache
def _validators() -> tuple[Any, dict[str, Any]]:
    from jsonschema import Draft7Validator

    from flowspec.spec.schema import build_schema

    schema = build_schema()
    definitions = schema["definitions"]
    skeleton = copy.deepcopy(schema)
    union = skeleton["properties"]["nodes"]["additionalProperties"]
    skeleton["properties"]["nodes"]["additionalProperties"] = {"type": "object"}
    kinds: dict[str, Any] = {}
    for branch in union["oneOf"]:
        name = branch["$ref"].rsplit("/", 1)[1]
        const = definitions[name]["properties"]["type"]["const"]
        kinds[const] = Draft7Validator({"$ref": branch["$ref"], "definitions": definitions})
    return Draft7Validator(skeleton), kinds


def schema_valid(data: Any) -> bool:
    """True when `data` satisfies the spec's JSON Schema (False says nothing about why)."""
    skeleton, kinds = _validators()
    if not skeleton.is_valid(data):
        return False
    for node in data["nodes"].values():
        validator = kinds.get(str(node.get("type"))) if isinstance(node, dict) else None
        if validator is None:
            return False
        key = json.dumps(node, sort_keys=True)
        known = _valid_nodes.get(key)
        if known is None:
            if len(_valid_nodes) >= _MEMO_LIMIT:
                _valid_nodes.clear()
            known = _valid_nodes[key] = bool(validator.is_valid(node))
        if not known:
            return False
    return True


def compile_valid(data: Any, source: str, env: Mapping[str, str],
                  version: int) -> CompiledGraph | None:
    """The compiled graph of `data` when it is a valid spec, else None (compile the text to
    learn why). Warnings it finds carry pointers but no line numbers."""
    from pydantic import ValidationError

    from flowspec.spec.check import check_graph
    from flowspec.spec.models.graph import GraphSpec

    if not schema_valid(data):
        return None
    doc = Document(data=copy.deepcopy(data), source=source)
    found: list[Diagnostic] = interpolate(doc, env)
    if _errors(found):
        return None
    try:
        spec = GraphSpec.model_validate(doc.data)
    except ValidationError:
        return None
    parts, checked = check_graph(doc, spec)
    found.extend(checked)
    if _errors(found):
        return None
    return CompiledGraph(
        name=spec.name, spec=spec, nodes=parts.nodes, edges=tuple(parts.edges),
        tools=parts.tools, entry=parts.entry, inserted=frozenset(parts.inserted),
        diagnostics=tuple(dict.fromkeys(found)), content_hash=content_hash(data),
        version=version, source=source)


def _errors(found: list[Diagnostic]) -> bool:
    return any(d.severity is Severity.ERROR for d in found)
