"""`flow:` — the conversation as states and transitions, for the conversation's model node.

Each state gives the model its instructions and the tools it may call; a call to a tool (or to
a transition-only function declared here, with no handler) moves the call to another state,
directly or through a branch table on a field of the tool's result. Checked whole by
`flowspec.spec.flow_rules`; run by `flowspec.conversation.flow`.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field

from flowspec.conversation.template import NAME_PATTERN
from flowspec.spec.models.base import Mutability, StrictModel, spec_field
from flowspec.spec.models.openai_common import NODE_ID_PATTERN
from flowspec.spec.models.tools import TOOL_NAME_PATTERN

LIVE = Mutability.LIVE
NEXT = Mutability.NEXT_SESSION

STATE_NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_-]{0,63}$"
PATH_PATTERN = r"^(result|arguments)(\.[A-Za-z0-9_-]+)*$"
MAX_STATES = 200

StateName = Annotated[str, Field(pattern=STATE_NAME_PATTERN)]
FunctionName = Annotated[str, Field(pattern=TOOL_NAME_PATTERN)]
FlowValueName = Annotated[str, Field(pattern=NAME_PATTERN, max_length=64)]

ContextStrategy = Literal["append", "reset", "reset_with_summary"]
CONTEXT_DESCRIPTIONS = [
    "Keep the conversation so far.",
    "Start the new state with no history.",
    "Replace the history with a short summary the model writes (Responses nodes).",
]


class BranchSpec(StrictModel):
    """Where a tool's call leads: one state (`to`), or a table on a field of its result."""

    to: str | None = spec_field(
        description="The state the call moves to.",
        mutability=NEXT,
        pattern=STATE_NAME_PATTERN,
    )
    on: str | None = spec_field(
        description="The field the `cases` are keyed on: `result.<path>` (the tool's JSON "
        "result) or `arguments.<path>` (what the model passed).",
        mutability=NEXT,
        pattern=PATH_PATTERN,
        examples=["result.status"],
    )
    cases: dict[str, StateName] = spec_field(
        default_factory=dict,
        description="Value of `on` (as text) → state.",
        mutability=NEXT,
        examples=[{"available": "confirm", "full": "collect"}],
    )
    default: str | None = spec_field(
        description="The state when no case matches (none: stay).",
        mutability=NEXT,
        pattern=STATE_NAME_PATTERN,
    )
    set: dict[FlowValueName, Annotated[str, Field(pattern=PATH_PATTERN)]] = spec_field(
        default_factory=dict,
        description="Flow state to keep from this call, `name: result.<path>` or "
        "`arguments.<path>`; templates read it as `{{name}}`.",
        mutability=NEXT,
        examples=[{"party_size": "arguments.people"}],
    )


Transition = Annotated[str, Field(pattern=STATE_NAME_PATTERN)] | BranchSpec


class FunctionSpec(StrictModel):
    """A transition-only function: the model calls it to move on; no code runs."""

    description: str = spec_field(
        ..., description="When the model should call it.", mutability=LIVE, min_length=1,
        max_length=4_000,
    )
    parameters: dict[str, Any] = spec_field(
        default_factory=lambda: {"type": "object", "properties": {}},
        description="JSON Schema of the arguments (they can feed `set:` and branch tables).",
        mutability=LIVE,
    )


class ActionSpec(StrictModel):
    """Something done on entering a state."""

    say: str | None = spec_field(description="Say these exact words. May use `{{name}}`.",
                                 mutability=LIVE, min_length=1, max_length=4_000)
    prompt: str | None = spec_field(description="Answer this instruction in the model's own "
                                    "words. May use `{{name}}`.", mutability=LIVE,
                                    min_length=1, max_length=4_000)
    end_call: bool | None = spec_field(description="`true`: hang up once what was said has "
                                       "been heard.", mutability=LIVE)


class StateSpec(StrictModel):
    """One state of the flow."""

    instructions: str = spec_field(
        ...,
        description="What the model does in this state (added to the node's own "
        "instructions). May use `{{name}}`: variables and flow state.",
        mutability=LIVE,
        min_length=1,
        max_length=20_000,
    )
    tools: list[str] = spec_field(
        default_factory=list,
        description="Tool nodes the model may call in this state (besides `global_tools`).",
        mutability=LIVE,
        max_length=128,
    )
    functions: dict[FunctionName, FunctionSpec] = spec_field(
        default_factory=dict,
        description="Transition-only functions, by the name the model sees.",
        mutability=LIVE,
        max_length=64,
    )
    transitions: dict[FunctionName, Transition] = spec_field(
        default_factory=dict,
        description="Per tool or function name: the state its call leads to, or a branch "
        "table.",
        mutability=NEXT,
        examples=[{"check_availability": {"on": "result.status",
                                          "cases": {"available": "confirm"},
                                          "default": "collect"}}],
    )
    context: ContextStrategy | None = spec_field(
        description="What happens to the conversation so far on entering this state (default: "
        "the flow's `context`).",
        mutability=NEXT,
        enum_descriptions=CONTEXT_DESCRIPTIONS,
    )
    on_enter: list[ActionSpec] = spec_field(
        default_factory=list,
        description="Done on entering the state, in order. Without a `say` or `prompt` the "
        "model answers in the new state at once.",
        mutability=LIVE,
        max_length=16,
    )
    final: bool = spec_field(
        False,
        description="A state the call may end in: it needs no transition out.",
        mutability=NEXT,
    )


class FlowSpec(StrictModel):
    """The conversation as states: where it starts, each state's instructions and tools, and
    where each tool's call leads."""

    model: str | None = spec_field(
        description="The model node the flow drives. Default: the conversation's, or the "
        "spec's only model node.",
        mutability=NEXT,
        pattern=NODE_ID_PATTERN,
    )
    initial: str = spec_field(
        ..., description="The state a call starts in.", mutability=NEXT,
        pattern=STATE_NAME_PATTERN,
    )
    context: ContextStrategy = spec_field(
        "append",
        description="What a transition does to the conversation so far, unless the state says.",
        mutability=NEXT,
        enum_descriptions=CONTEXT_DESCRIPTIONS,
    )
    global_tools: list[str] = spec_field(
        default_factory=list,
        description="Tool nodes the model may call in every state.",
        mutability=NEXT,
        max_length=128,
    )
    states: dict[StateName, StateSpec] = spec_field(
        ...,
        description="The states, by name.",
        mutability=NEXT,
        min_length=1,
        max_length=MAX_STATES,
    )
