"""The spec document: nodes keyed by id, edges in shorthand or object form."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from flowspec.spec.models.audio import AudioConvertSpec, AudioRecordSpec, TranscriptLogSpec
from flowspec.spec.models.base import Mutability, StrictModel, spec_field
from flowspec.spec.models.openai_common import NODE_ID_PATTERN
from flowspec.spec.models.realtime import RealtimeNodeSpec
from flowspec.spec.models.realtime_beta import RealtimeBetaNodeSpec
from flowspec.spec.models.responses import ResponsesNodeSpec
from flowspec.spec.models.tools import HttpToolSpec, PythonToolSpec
from flowspec.spec.models.transports import (
    ConsoleTransportSpec,
    TextTransportSpec,
    TwilioTransportSpec,
    WavTransportSpec,
    WebsocketTransportSpec,
)

STRUCT = Mutability.STRUCTURAL

NODE_MODELS = (
    RealtimeNodeSpec,
    RealtimeBetaNodeSpec,
    ResponsesNodeSpec,
    WebsocketTransportSpec,
    TwilioTransportSpec,
    TextTransportSpec,
    ConsoleTransportSpec,
    WavTransportSpec,
    PythonToolSpec,
    HttpToolSpec,
    AudioConvertSpec,
    AudioRecordSpec,
    TranscriptLogSpec,
)

AnyNodeSpec = Annotated[
    RealtimeNodeSpec
    | RealtimeBetaNodeSpec
    | ResponsesNodeSpec
    | WebsocketTransportSpec
    | TwilioTransportSpec
    | TextTransportSpec
    | ConsoleTransportSpec
    | WavTransportSpec
    | PythonToolSpec
    | HttpToolSpec
    | AudioConvertSpec
    | AudioRecordSpec
    | TranscriptLogSpec,
    Field(discriminator="type"),
]

NODE_TYPES: dict[str, type[StrictModel]] = {
    m.model_fields["type"].annotation.__args__[0]: m  # type: ignore[union-attr]
    for m in NODE_MODELS
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


class GraphSpec(StrictModel):
    """A flowspec bot: a graph of nodes and the edges frames stream along."""

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
    nodes: dict[Annotated[str, Field(pattern=NODE_ID_PATTERN)], AnyNodeSpec] = spec_field(
        ...,
        description="The nodes, keyed by id (letters, digits, `_` and `-`).",
        mutability=STRUCT,
        min_length=1,
    )
    edges: list[EdgeSpec] = spec_field(
        default_factory=list,
        description="Edges: `a -> b -> c` (ports `out` → `in`; `a.port` names one) or "
        "`{from, to, queue}`.",
        mutability=STRUCT,
        examples=[["caller -> llm -> caller"]],
    )
