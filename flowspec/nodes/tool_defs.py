"""Tool definitions sent to a model, generated from the tool nodes in each dialect's shape.

Realtime (GA and beta) takes flat function tools without `strict`; Responses takes flat function
tools with `strict`. Neither wraps them in `function: {...}` as Chat Completions does.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

from flowspec.spec.models.base import NodeSpec
from flowspec.spec.models.tools import ToolNodeSpec

Dialect = Literal["realtime", "responses"]


def tool_definitions(
    tool_ids: Sequence[str], nodes: Mapping[str, NodeSpec], dialect: Dialect
) -> list[dict[str, Any]]:
    """Definitions for `tool_ids`: a model node's `tools:` list, already checked by the compiler."""
    definitions: list[dict[str, Any]] = []
    for tool_id in tool_ids:
        node = nodes[tool_id]
        if not isinstance(node, ToolNodeSpec):
            raise TypeError(f"{tool_id!r} is a {node.type} node, not a tool")
        definition: dict[str, Any] = {
            "type": "function",
            "name": node.function_name(tool_id),
            "description": node.description,
            "parameters": node.parameters,
        }
        if dialect == "responses":
            definition["strict"] = node.strict
        definitions.append(definition)
    return definitions
