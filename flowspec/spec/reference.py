"""The spec reference in Markdown, rendered from the editor schema (`schemas/REFERENCE.md`).

It reads the same schema the editor reads, so the reference shows exactly what completion and hover
show: every node type, field (as a dotted path), type, default, allowed values and mutability.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from flowspec.families.registry import FamilyRegistry
from flowspec.spec.models.base import MUTABILITY_TEXT, PRIVILEGED_TEXT, Mutability
from flowspec.spec.schema import build_schema

HEADER = """\
# flowspec spec reference

Generated from the models by `flowspec schema --markdown` (`python tools/gen_schema.py`); do not
edit by hand. Editors using yaml-language-server show the same descriptions, defaults and allowed
values in completion and hover, from `schemas/flowspec.schema.json`.

**When a change applies** (`x-flowspec-mutability`, shown in hover as well):

| class | meaning |
| --- | --- |
"""


def _cell(text: str) -> str:
    return " ".join(text.replace("|", "\\|").split())


def _code(value: Any) -> str:
    shown = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return f"`{shown}`".replace("|", "\\|")


class _Renderer:
    def __init__(self, schema: dict[str, Any]) -> None:
        self.definitions: dict[str, Any] = schema["definitions"]

    def resolve(self, node: dict[str, Any]) -> dict[str, Any]:
        if "$ref" in node:
            return self.resolve(self.definitions[node["$ref"].rsplit("/", 1)[1]])
        all_of = node.get("allOf")
        if isinstance(all_of, list) and len(all_of) == 1 and "$ref" in all_of[0]:
            return self.resolve(all_of[0])
        return node

    def branches(self, node: dict[str, Any]) -> list[dict[str, Any]]:
        node = self.resolve(node)
        union = node.get("oneOf") or node.get("anyOf")
        if not isinstance(union, list):
            return [node]
        found: list[dict[str, Any]] = []
        for branch in union:
            found.extend(self.branches(branch))
        return found

    def type_text(self, node: dict[str, Any]) -> str:
        parts: list[str] = []
        kinds = [b for b in self.branches(node) if "type" in b.get("properties", {})]
        if len(kinds) > 3:
            return f"node: object whose `type` is one of the {len(kinds)} node types"
        for branch in self.branches(node):
            kind = branch.get("type")
            const = branch.get("properties", {}).get("type", {}).get("const")
            if "properties" in branch:
                parts.append(f"object (`type: {const}`)" if const else "object")
            elif "const" in branch:
                parts.append(_code(branch["const"]))
            elif kind == "array":
                parts.append(f"list of {self.type_text(branch.get('items', {}))}")
            elif kind == "object" and isinstance(branch.get("additionalProperties"), dict):
                parts.append(f"map of {self.type_text(branch['additionalProperties'])}")
            elif kind:
                parts.append(str(kind) if "enum" not in branch else f"{kind} (enum)")
            elif "enum" in branch:
                parts.append("enum")
            elif "pattern" in branch:
                parts.append(f"string matching `{branch['pattern']}`")
            else:
                parts.append("any")
        return " or ".join(dict.fromkeys(parts))

    def values_text(self, node: dict[str, Any]) -> str:
        values: list[str] = []
        for branch in self.branches(node):
            enum = branch.get("enum")
            if enum is None and branch.get("type") == "array":
                enum = self.resolve(branch.get("items", {})).get("enum")
            described = branch.get("enumDescriptions", [])
            for index, value in enumerate(enum or []):
                note = described[index] if index < len(described) else ""
                values.append(f"{_code(value)}: {note}" if note else _code(value))
            if "pattern" in branch and "enum" not in branch and "properties" not in branch:
                values.append(f"{'or ' if values else ''}matching `{branch['pattern']}`")
        if not values:
            examples = node.get("examples")
            if isinstance(examples, list) and examples:
                values.append("e.g. " + ", ".join(_code(e) for e in examples[:4]))
        described = any(": " in v for v in values)
        return _cell("<br>".join(values) if described else ", ".join(values))

    def default_text(self, node: dict[str, Any]) -> str:
        if "default" not in node:
            return ""
        shown = _code(node["default"])
        return f"{shown} (provider)" if node.get("x-flowspec-not-given") else shown

    def row(self, path: str, node: dict[str, Any], condition: str) -> str:
        description = node.get("description", "")
        if condition:
            description = f"({condition}) {description}"
        if node.get("deprecationMessage"):
            description += f" **Deprecated:** {node['deprecationMessage']}"
        if node.get("x-flowspec-secret"):
            description += " Secret: never printed."
        if node.get("x-flowspec-privileged"):
            description += f" {PRIVILEGED_TEXT}"
        cells = [
            f"`{path}`",
            self.type_text(node),
            self.default_text(node),
            self.values_text(node),
            node.get("x-flowspec-mutability", ""),
            description,
        ]
        return "| " + " | ".join(_cell(c) for c in cells) + " |"

    def rows(self, node: dict[str, Any], path: str = "", condition: str = "") -> Iterator[str]:
        for name, prop in self.resolve(node).get("properties", {}).items():
            full = f"{path}.{name}" if path else name
            if condition and name == "type":
                continue  # the parent's row lists the kinds already
            yield self.row(full, prop, condition)
            if not prop.get("deprecationMessage"):
                # A deprecated form repeats its replacement's fields; document them once.
                yield from self.children(prop, full, condition)

    def children(self, prop: dict[str, Any], path: str, condition: str) -> Iterator[str]:
        objects = [b for b in self.branches(prop) if "properties" in b]
        for branch in objects:
            const = branch["properties"].get("type", {}).get("const")
            inner = f"when `type: {const}`" if const and len(objects) > 1 else condition
            yield from self.rows(branch, path, inner)
        for branch in self.branches(prop):
            items = branch.get("items") if branch.get("type") == "array" else None
            if isinstance(items, dict) and any("properties" in b for b in self.branches(items)):
                yield from self.children(items, f"{path}[]", condition)


TABLE_HEAD = (
    "| field | type | default | values | when a change applies | description |\n"
    "| --- | --- | --- | --- | --- | --- |\n"
)


def reference_markdown(families: FamilyRegistry | None = None) -> str:
    """The whole reference document, ending with a newline: of every installed node family, or
    of `families` (`builtin_families()` for the committed file)."""
    schema = build_schema(families)
    renderer = _Renderer(schema)
    out = [HEADER]
    for mutability in Mutability:
        out.append(f"| `{mutability.value}` | {_cell(MUTABILITY_TEXT[mutability])} |\n")
    out.append("\nSettings marked *(provider)* are not sent when omitted; the value shown is what "
               "the provider then uses.\n")

    node_branches = schema["properties"]["nodes"]["additionalProperties"]["oneOf"]
    nodes = [renderer.resolve(branch) for branch in node_branches]
    out.append("\n## Node types\n\n| type | what it is |\n| --- | --- |\n")
    for node in nodes:
        kind = node["properties"]["type"]["const"]
        summary = node.get("description", "").split("\n\n")[0]
        out.append(f"| [`{kind}`](#{kind.replace('.', '')}) | {_cell(summary)} |\n")

    top = {k: v for k, v in schema["properties"].items()}
    out.append("\n## The document\n\n")
    out.append(_cell(schema.get("description", "")) + "\n\n" if schema.get("description") else "")
    out.append(TABLE_HEAD)
    for name, prop in top.items():
        out.append(renderer.row(name, prop, "") + "\n")
    out.append("\n### Edge objects (`edges[]`)\n\n" + TABLE_HEAD)
    out.extend(line + "\n" for line in renderer.rows(schema["definitions"]["EdgeObjectSpec"]))

    for node in nodes:
        kind = node["properties"]["type"]["const"]
        out.append(f"\n## {kind}\n\n{node.get('description', '').strip()}\n\n")
        snippet = node.get("defaultSnippets", [{}])[0].get("body")
        if snippet:
            out.append("Starter (the editor's snippet):\n\n```yaml\n")
            out.append(_yaml(snippet, 0))
            out.append("```\n\n")
        out.append(TABLE_HEAD)
        out.extend(line + "\n" for line in renderer.rows(node))
    return "".join(out)


def _yaml(value: Any, indent: int) -> str:
    # A tiny block-style emitter for the snippets (plain dicts, lists and scalars); ruamel would
    # work too but is slower to import and its output style is not what the README shows.
    pad = " " * indent
    lines: list[str] = []
    if isinstance(value, dict):
        for key, sub in value.items():
            if isinstance(sub, dict) and sub:
                lines.append(f"{pad}{key}:\n{_yaml(sub, indent + 2)}")
            elif isinstance(sub, list) and sub:
                lines.append(f"{pad}{key}:\n{_yaml(sub, indent + 2)}")
            else:
                lines.append(f"{pad}{key}: {_scalar(sub)}\n")
    elif isinstance(value, list):
        for item in value:
            lines.append(f"{pad}- {_scalar(item)}\n")
    return "".join(lines)


def _scalar(value: Any) -> str:
    if isinstance(value, dict | list):
        return json.dumps(value) if value else ("{}" if isinstance(value, dict) else "[]")
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    return json.dumps(value)
