"""The JSON Schema of the spec language, generated from the models and shaped for editors.

pydantic emits 2020-12 with `$defs`, auto titles, `anyOf [X, null]` for optional fields and an
OpenAPI `discriminator`. Editors (yaml-language-server) do best with draft-07, `oneOf` over
`type` consts, `markdownDescription`, `deprecationMessage` and `defaultSnippets`, so the raw output
is rewritten here. The committed `schemas/flowspec.schema.json` is this function's output for the
built-in node families; `flowspec schema` adds the families of installed packages.
"""

from __future__ import annotations

import json
from functools import cache
from typing import Any

from flowspec.families.registry import FamilyRegistry, default_families
from flowspec.spec.models.base import MUTABILITY_TEXT, PRIVILEGED_TEXT, Mutability

SCHEMA_ID = "https://flowspec.dev/schemas/flowspec.schema.json"
DRAFT_07 = "http://json-schema.org/draft-07/schema#"


def _markdown(node: dict[str, Any]) -> str:
    parts = [node["description"]]
    mutability = node.get("x-flowspec-mutability")
    if mutability:
        parts.append(MUTABILITY_TEXT[Mutability(mutability)])
    if node.get("x-flowspec-privileged"):
        parts.append(PRIVILEGED_TEXT)
    if "default" in node:
        shown = json.dumps(node["default"], ensure_ascii=False)
        label = "Provider default" if node.get("x-flowspec-not-given") else "Default"
        suffix = " (omitted settings are not sent)" if node.get("x-flowspec-not-given") else ""
        parts.append(f"{label}: `{shown}`{suffix}.")
    if "deprecationMessage" in node:
        parts.append(f"**Deprecated.** {node['deprecationMessage']}")
    return "\n\n".join(parts)


def _drop_null_branch(node: dict[str, Any]) -> None:
    # An omitted setting is how a spec says "not given"; offering `null` in completion is noise.
    any_of = node.get("anyOf")
    if not isinstance(any_of, list):
        return
    kept = [b for b in any_of if b != {"type": "null"}]
    if len(kept) == len(any_of):
        return
    if len(kept) == 1:
        del node["anyOf"]
        node.update(kept[0])
    else:
        node["anyOf"] = kept
    if node.get("default", 0) is None:
        del node["default"]


def _open_enum(node: dict[str, Any]) -> None:
    # A documented list plus custom ids (voices): an `enum` branch is what editors complete with
    # descriptions; the pattern branch keeps the examples so `flowspec validate` can still hint
    # "did you mean" for a misspelt built-in.
    custom = node.pop("x-flowspec-custom-pattern")
    values = node.pop("examples")
    node.pop("pattern", None)
    listed: dict[str, Any] = {"enum": values}
    if "enumDescriptions" in node:
        listed["enumDescriptions"] = node.pop("enumDescriptions")
    # oneOf, not anyOf: the branches exclude each other, and yaml-language-server replaces the
    # hover text of a fully matched anyOf with its branches' (empty) descriptions.
    node["oneOf"] = [listed, {"pattern": custom, "examples": values}]


def _rewrite(node: Any) -> Any:
    if isinstance(node, list):
        return [_rewrite(item) for item in node]
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in ("title", "discriminator"):
            continue
        if key == "$ref" and isinstance(value, str):
            out[key] = value.replace("#/$defs/", "#/definitions/")
            continue
        if key in ("properties", "$defs", "definitions") and isinstance(value, dict):
            out[key] = {name: _rewrite(sub) for name, sub in value.items()}
            continue
        out[key] = _rewrite(value)
    _drop_null_branch(out)
    pattern_props = out.get("patternProperties")
    if isinstance(pattern_props, dict) and len(pattern_props) == 1:
        # Editors complete map values from `additionalProperties`, not from patternProperties.
        ((pattern, value_schema),) = pattern_props.items()
        del out["patternProperties"]
        out["propertyNames"] = {"pattern": pattern}
        out["additionalProperties"] = value_schema
    if out.get("default", 0) is None:
        del out["default"]
    if "x-flowspec-custom-pattern" in out:
        _open_enum(out)
    if "description" in out and "x-flowspec-mutability" in out:
        out["markdownDescription"] = _markdown(out)
    if "deprecationMessage" in out:
        out["doNotSuggest"] = True
    if "$ref" in out and len(out) > 1:
        # draft-07 ignores siblings of $ref; keep the annotations by wrapping the reference.
        ref = out.pop("$ref")
        out["allOf"] = [{"$ref": ref}]
    return out


def _node_snippets(definitions: dict[str, Any],
                   families: FamilyRegistry) -> list[dict[str, Any]]:
    snippets: list[dict[str, Any]] = []
    for definition in definitions.values():
        node_type = definition.get("properties", {}).get("type", {}).get("const")
        if node_type in families:
            # The title names the node kind in hover headings and in the editor's "insert the
            # required fields" completion (instead of a class name such as RealtimeNodeSpec).
            definition["title"] = node_type
            snippet = {
                "label": f"{node_type} node",
                "description": definition.get("description", ""),
                "body": families.snippet(node_type),
            }
            definition["defaultSnippets"] = [snippet]
            definition["required"] = ["type"] + [
                r for r in definition.get("required", []) if r != "type"
            ]
            snippets.append(snippet)
    return snippets


def _build(families: FamilyRegistry) -> dict[str, Any]:
    raw = families.graph_model().model_json_schema(by_alias=True)
    schema: dict[str, Any] = _rewrite(raw)
    definitions = schema.pop("$defs", {})
    snippets = _node_snippets(definitions, families)
    nodes = schema["properties"]["nodes"]
    nodes["additionalProperties"]["defaultSnippets"] = snippets
    edges = schema["properties"]["edges"]
    # Snippets sit on the items, offered after `- `: yaml-language-server 1.25 mangles array-level
    # snippet bodies (it inserts `- 0: …`).
    edges["items"]["anyOf"][0]["defaultSnippets"] = [
        {"label": "edge chain", "description": "a -> b -> c (out ports to in ports)",
         "body": "${1:caller} -> ${2:llm} -> ${1:caller}"},
    ]
    edge_object = definitions["EdgeObjectSpec"]
    edge_object["title"] = "edge object"
    edge_object["description"] = "An edge with options: `{from, to, queue}`."
    edge_object["defaultSnippets"] = [
        {"label": "edge object with queue", "description": "An edge with queue options.",
         "body": {"from": "${1:caller.out}", "to": "${2:llm.in}",
                  "queue": {"capacity": 128, "overflow": "block"}}},
    ]
    top: dict[str, Any] = {
        "$schema": DRAFT_07,
        "$id": SCHEMA_ID,
        **schema,
        "definitions": dict(sorted(definitions.items())),
    }
    top["defaultSnippets"] = [
        {
            "label": "new flowspec bot",
            "body": {"flowspec": 1, "name": "${1:my-bot}", "nodes": {}, "edges": []},
        }
    ]
    return top


@cache
def build_schema(families: FamilyRegistry | None = None) -> dict[str, Any]:
    """The editor-ready JSON Schema (draft-07) of the spec language: of every installed node
    family (kept on disk between runs: `schema_cache`), or of `families` (`builtin_families()`
    for the committed file)."""
    if families is None:
        from flowspec.spec.schema_cache import load_or_build

        return load_or_build(default_families(), _build)
    return _build(families)


def schema_text(families: FamilyRegistry | None = None) -> str:
    """The schema as written to disk: stable key order, two-space indent, trailing newline."""
    return json.dumps(build_schema(families), indent=2, ensure_ascii=False) + "\n"
