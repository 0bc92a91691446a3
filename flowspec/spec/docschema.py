"""A schema specialised to one spec document: its node ids, ports, tool ids and flow states
become enums.

JSON Schema cannot say that an edge endpoint names an existing node's port. Rewriting the base
schema with the document's own names lets plain yaml-language-server complete edge endpoints and
`tools:` lists and a flow's states and transition targets, and flag stale references after a
rename, with no editor plugin
(`flowspec schema --for SPEC -o FILE`, then point the spec's modeline at FILE).
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from flowspec.families.registry import default_families
from flowspec.spec.schema import build_schema

MAX_CHAIN_EXAMPLES = 60
"""Cap on the `a -> b` chains offered, so big specs keep a readable completion list."""


@dataclass(frozen=True, slots=True)
class _Endpoint:
    ref: str
    """`node` for its default port (`out` as a source, `in` as a target), else `node.port`."""
    node: str
    description: str


@dataclass(slots=True)
class _Names:
    sources: list[_Endpoint]
    targets: list[_Endpoint]
    tools: dict[str, str]
    """Tool node id → its description."""
    transports: list[str]
    models: list[str]


def _node_spec(node_type: str, body: Mapping[str, Any]) -> Any:
    from pydantic import ValidationError

    families = default_families()
    model = families.model(node_type)
    try:
        return model.model_validate(dict(body))
    except ValidationError:
        # A node being edited is often invalid; its kind's starter body still has the kind's ports.
        return model.model_validate(families.snippet(node_type))


def _caps_text(port: Any) -> str:
    text = ", ".join(sorted(port.kinds))
    return f"{text}; {port.audio}" if port.audio is not None else text


def _names(nodes: Mapping[str, Any]) -> _Names:
    from flowspec.spec.ports import ports_of

    families = default_families()
    names = _Names(sources=[], targets=[], tools={}, transports=[], models=[])
    for node_id, body in nodes.items():
        node_type = body.get("type") if isinstance(body, Mapping) else None
        if not isinstance(node_id, str) or not isinstance(node_type, str) \
                or node_type not in families:
            continue
        spec = _node_spec(node_type, body)
        kind = type(spec).kind
        if kind == "tool":
            names.tools[node_id] = str(getattr(spec, "description", ""))
            continue
        if kind == "transport":
            names.transports.append(node_id)
        elif kind == "model":
            names.models.append(node_id)
        for port in ports_of(spec).values():
            default = "out" if port.direction == "out" else "in"
            where = names.sources if port.direction == "out" else names.targets
            what = f"{port.direction} port `{port.name}` of `{node_id}` ({node_type}): " \
                   f"{_caps_text(port)}"
            if port.name == default:
                where.append(_Endpoint(node_id, node_id, what))
            where.append(_Endpoint(f"{node_id}.{port.name}", node_id, what))
    return names


def _chain_examples(names: _Names) -> list[str]:
    short_sources = [e for e in names.sources if "." not in e.ref]
    short_targets = [e for e in names.targets if "." not in e.ref]
    chains = [f"{t} -> {m} -> {t}" for t in names.transports for m in names.models
              if any(e.ref == t for e in short_sources) and any(e.ref == m for e in short_targets)]
    for source in names.sources:
        for target in names.targets:
            if source.node != target.node and ("." not in source.ref) == ("." not in target.ref):
                chains.append(f"{source.ref} -> {target.ref}")
    return list(dict.fromkeys(chains))[:MAX_CHAIN_EXAMPLES]


def _narrow_edges(schema: dict[str, Any], names: _Names) -> None:
    definitions = schema["definitions"]
    edge = definitions["EdgeObjectSpec"]["properties"]
    for key, endpoints in (("from", names.sources), ("to", names.targets)):
        if not endpoints:
            continue
        prop = edge[key]
        prop.pop("pattern", None)
        prop["enum"] = [e.ref for e in endpoints]
        prop["enumDescriptions"] = [e.description for e in endpoints]
        prop.pop("examples", None)
    refs = sorted({e.ref for e in names.sources + names.targets}, key=lambda r: (-len(r), r))
    if not refs:
        return
    chain = schema["properties"]["edges"]["items"]["anyOf"][0]
    one = "(" + "|".join(re.escape(r) for r in refs) + ")"
    chain["pattern"] = rf"^\s*{one}(\s*->\s*{one})+\s*$"
    chain["patternErrorMessage"] = (
        "An edge joins this spec's nodes and ports: " + ", ".join(sorted(refs))
        + " (regenerate this schema after adding nodes)."
    )
    chain["examples"] = _chain_examples(names) or chain.get("examples", [])


def _narrow_tools(schema: dict[str, Any], tools: Mapping[str, str]) -> None:
    if not tools:
        return
    definitions = schema["definitions"]
    lists = [definition.get("properties", {}).get("tools") for definition in definitions.values()]
    # A flow's `global_tools` lists tool nodes too; each state's `tools` is caught above.
    lists.append(definitions["FlowSpec"]["properties"]["global_tools"])
    for prop in lists:
        if prop and prop.get("items") == {"type": "string"}:
            prop["items"] = {
                "type": "string",
                "enum": list(tools),
                "enumDescriptions": list(tools.values()),
            }
            prop["examples"] = [list(tools)]


def _states(data: Mapping[str, Any]) -> dict[str, str]:
    """The flow's state names → a line saying what each does (empty: no readable flow)."""
    flow = data.get("flow")
    states = flow.get("states") if isinstance(flow, Mapping) else None
    if not isinstance(states, Mapping):
        return {}
    initial = flow.get("initial") if isinstance(flow, Mapping) else None
    described: dict[str, str] = {}
    for name, state in states.items():
        if not isinstance(name, str):
            continue
        body = state if isinstance(state, Mapping) else {}
        text = body.get("instructions")
        line = " ".join(text.split()) if isinstance(text, str) else ""
        line = line if len(line) <= 100 else line[:99] + "…"
        marks = [mark for mark, on in (("initial", name == initial),
                                       ("final", body.get("final") is True)) if on]
        described[name] = (f"({', '.join(marks)}) " if marks else "") + (line or "state")
    return described


def _narrow_flow(schema: dict[str, Any], states: Mapping[str, str]) -> None:
    """Every place a state is named (the initial state, a transition's target, a branch table's
    cases and default) offers the flow's states."""
    if not states:
        return
    definitions = schema["definitions"]
    branch = definitions["BranchSpec"]["properties"]
    transition = definitions["StateSpec"]["properties"]["transitions"]["additionalProperties"]
    names = [definitions["FlowSpec"]["properties"]["initial"], branch["to"], branch["default"],
             branch["cases"]["additionalProperties"],
             next(form for form in transition["anyOf"] if form.get("type") == "string")]
    for prop in names:
        prop.pop("pattern", None)
        prop["enum"] = list(states)
        prop["enumDescriptions"] = list(states.values())


def document_schema(data: Any, source: str) -> dict[str, Any]:
    """The base schema narrowed to the names declared in `data` (a loaded spec document).

    Names that cannot be read (no `nodes` mapping, unknown node types) are left out; the result is
    always a valid draft-07 schema, at worst the base one.
    """
    schema = copy.deepcopy(build_schema())
    schema.pop("$id", None)
    schema["$comment"] = (
        f"Specialised to {source} by `flowspec schema --for`; regenerate it when nodes change."
    )
    schema["x-flowspec-for"] = source
    if not isinstance(data, Mapping):
        return schema
    _narrow_flow(schema, _states(data))
    nodes = data.get("nodes")
    if not isinstance(nodes, Mapping):
        return schema
    names = _names(nodes)
    _narrow_edges(schema, names)
    _narrow_tools(schema, names.tools)
    return schema


def document_schema_text(data: Any, source: str) -> str:
    """The specialised schema as written to disk: two-space indent, trailing newline."""
    return json.dumps(document_schema(data, source), indent=2, ensure_ascii=False) + "\n"
