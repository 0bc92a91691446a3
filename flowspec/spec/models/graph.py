"""The spec document: nodes keyed by id, edges in shorthand or object form.

The node union is built from the registered node families (`flowspec.families`): the built-ins
and those of installed packages, so a plugin's node type validates like a built-in one.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from typing import TYPE_CHECKING, Annotated, Any, Literal, TypeAlias, Union

from pydantic import Field, create_model

from flowspec.families.registry import default_families
from flowspec.spec.models.base import Mutability, NodeSpec, StrictModel, spec_field
from flowspec.spec.models.conversation import (
    VARIABLE_NAME_PATTERN,
    VARIABLES_FIELD,
    ConversationSpec,
    VariableSpec,
)
from flowspec.spec.models.flow import FlowSpec
from flowspec.spec.models.openai_common import NODE_ID_PATTERN

STRUCT = Mutability.STRUCTURAL


def node_union(models: Sequence[type[NodeSpec]]) -> Any:
    """The pydantic union of node models, told apart by their `type`."""
    if len(models) == 1:
        return models[0]
    return Annotated[Union[tuple(models)], Field(discriminator="type")]  # noqa: UP007


NODE_MODELS: tuple[type[NodeSpec], ...] = default_families().models()
"""Every node model: the built-in families' and those of installed packages."""

if TYPE_CHECKING:
    AnyNodeSpec: TypeAlias = NodeSpec
else:
    AnyNodeSpec = node_union(NODE_MODELS)

NODE_TYPES: dict[str, type[NodeSpec]] = {
    node_type: default_families().model(node_type) for node_type in default_families().types
}

_REF = r"[A-Za-z_][A-Za-z0-9_-]*(\.[A-Za-z_][A-Za-z0-9_]*)?"
EDGE_CHAIN_PATTERN = rf"^\s*{_REF}(\s*->\s*{_REF})+\s*$"
PORT_REF_PATTERN = rf"^{_REF}$"


class QueueSpec(StrictModel):
    capacity: int = spec_field(
        128,
        description="Most data frames queued on this edge while its consumer is busy.",
        mutability=STRUCT,
        ge=1,
        le=100_000,
    )
    overflow: Literal["block", "drop_oldest"] = spec_field(
        "block",
        description="When full: `block` the producer, or `drop_oldest` audio (for a slow "
        "consumer of live audio). Control and system frames are never dropped.",
        mutability=STRUCT,
        enum_descriptions=["Wait for room (nothing lost).", "Drop the oldest queued audio."],
    )


class EdgeObjectSpec(StrictModel):
    source: str = spec_field(
        ...,
        description="Where frames come from: `node` (its `out` port) or `node.port`.",
        mutability=STRUCT,
        alias="from",
        pattern=PORT_REF_PATTERN,
        examples=["caller.out"],
    )
    to: str = spec_field(
        ...,
        description="Where frames go: `node` (its `in` port) or `node.port`.",
        mutability=STRUCT,
        pattern=PORT_REF_PATTERN,
        examples=["llm.in"],
    )
    queue: QueueSpec = spec_field(
        default_factory=QueueSpec,
        description="Queue options of this edge.",
        mutability=STRUCT,
    )


EdgeSpec = Annotated[
    str,
    Field(pattern=EDGE_CHAIN_PATTERN, examples=["caller -> llm -> caller"]),
] | EdgeObjectSpec


NodeId = Annotated[str, Field(pattern=NODE_ID_PATTERN)]
VariableName = Annotated[str, Field(pattern=VARIABLE_NAME_PATTERN, max_length=64)]
_NODES_FIELD: dict[str, Any] = dict(
    description="The nodes, keyed by id (letters, digits, `_` and `-`).",
    mutability=STRUCT,
    min_length=1,
)


class GraphSpec(StrictModel):
    """A flowspec bot: a graph of nodes and the edges frames stream along."""

    schema_url: str | None = spec_field(
        alias="$schema",
        description="The JSON Schema of this file, for editors: a JSON spec's stand-in for the "
        "YAML modeline (`flowspec init bot.json` writes it).",
        mutability=Mutability.NEXT_SESSION,
        examples=["./flowspec.schema.json"],
    )
    flowspec: Literal[1] = spec_field(
        ...,
        description="Spec language version.", mutability=STRUCT
    )
    name: str = spec_field(
        ...,
        description="Name of the bot (shown in logs, metrics and the browser page).",
        mutability=Mutability.LIVE,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$",
        examples=["weather-voice"],
    )
    description: str | None = spec_field(
        description="What the bot is for.", mutability=Mutability.LIVE
    )
    nodes: dict[NodeId, AnyNodeSpec] = spec_field(..., **_NODES_FIELD)
    edges: list[EdgeSpec] = spec_field(
        default_factory=list,
        description="Edges: `a -> b -> c` (ports `out` → `in`; `a.port` names one) or "
        "`{from, to, queue}`.",
        mutability=STRUCT,
        examples=[["caller -> llm -> caller"]],
    )
    variables: dict[VariableName, VariableSpec] = spec_field(
        default_factory=dict, **VARIABLES_FIELD
    )
    conversation: ConversationSpec | None = spec_field(
        description="How a call goes beyond the model's session: the opening, seeded context, "
        "what happens on silence, the longest call and how it ends.",
        mutability=Mutability.NEXT_SESSION,
    )
    flow: FlowSpec | None = spec_field(
        description="The conversation as states: each with its instructions and tools, and "
        "where each tool's call leads (a state, or a branch table on its result).",
        mutability=Mutability.NEXT_SESSION,
    )


@cache
def graph_model(models: tuple[type[NodeSpec], ...]) -> type[GraphSpec]:
    """The spec document over these node models: `GraphSpec` itself for every installed family,
    a subclass for another set (the built-ins alone, for the committed schema)."""
    if models == NODE_MODELS:
        return GraphSpec
    union = node_union(models)
    nodes: Any = dict[NodeId, union]  # type: ignore[valid-type]
    model: type[GraphSpec] = create_model(
        "GraphSpec", __base__=GraphSpec, __doc__=GraphSpec.__doc__,
        nodes=(nodes, spec_field(..., **_NODES_FIELD)))
    return model
