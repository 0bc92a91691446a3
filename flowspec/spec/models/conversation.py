"""The conversation a bot has, declared at the top of a spec: `variables:` (per-call values) and
`conversation:` (opening, seeded context, silence, the longest call, the built-in `end_call`).

These are read by `flowspec.conversation` for each call; the model node a conversation belongs
to is named by `conversation.model` (default: the spec's only model node).
"""

from __future__ import annotations

from typing import Any, Literal

from flowspec.conversation.template import NAME_PATTERN
from flowspec.spec.models.base import Mutability, StrictModel, spec_field
from flowspec.spec.models.openai_common import NODE_ID_PATTERN
from flowspec.spec.models.tools import TOOL_NAME_PATTERN

LIVE = Mutability.LIVE
NEXT = Mutability.NEXT_SESSION

MAX_VARIABLES = 64
"""Most variables one spec declares (each call's values are checked against all of them)."""
MAX_VARIABLE_CHARS = 4_000
"""Longest value a caller may give one variable (a longer `maxLength` is refused)."""
MAX_CONTEXT_ITEMS = 200
"""Most items `conversation.context` seeds."""

REALTIME_SESSION_CAP_S = 3_600
"""OpenAI Realtime ends a session after 60 minutes."""

BUILTIN_VARIABLES = {
    "session_id": "The session's id (also in logs, metrics and webhook events).",
    "now": "When the call started, as an ISO 8601 UTC time.",
    "caller": "The caller's number on a Twilio call (`From`), empty elsewhere.",
    "called": "The number called on a Twilio call (`To`), empty elsewhere.",
}
"""Variables every call has; a spec cannot declare these names."""

_TEMPLATED = " May use `{{name}}` variables."


class VariableSpec(StrictModel):
    """One per-call value: a JSON Schema for it, and a default when the caller may omit it."""

    type: Literal["string", "integer", "number", "boolean"] = spec_field(
        "string",
        description="The value's JSON type. Values from a query string or a Twilio parameter "
        "arrive as text and are read as this type.",
        mutability=NEXT,
        enum_descriptions=["Text.", "A whole number.", "A number.", "`true` or `false`."],
    )
    description: str | None = spec_field(
        description="What the value is, for whoever fills it.", mutability=NEXT
    )
    default: str | int | float | bool | None = spec_field(
        description="The value when the call gives none. Without a default the variable is "
        "required: a call that omits it is refused before the model is contacted.",
        mutability=NEXT,
    )
    enum: list[str | int | float | bool] | None = spec_field(
        description="The only values allowed.", mutability=NEXT, min_length=1, max_length=1_000
    )
    pattern: str | None = spec_field(
        description="A regular expression a string value must match.",
        mutability=NEXT,
        max_length=1_000,
        examples=["^[0-9]{6}$"],
    )
    minLength: int | None = spec_field(  # noqa: N815 - JSON Schema's spelling
        description="Shortest string value.", mutability=NEXT, ge=0, le=MAX_VARIABLE_CHARS
    )
    maxLength: int = spec_field(  # noqa: N815 - JSON Schema's spelling
        200,
        description=f"Longest string value (at most {MAX_VARIABLE_CHARS:,}).",
        mutability=NEXT,
        ge=0,
        le=MAX_VARIABLE_CHARS,
    )
    minimum: float | None = spec_field(description="Smallest number.", mutability=NEXT)
    maximum: float | None = spec_field(description="Largest number.", mutability=NEXT)

    def json_schema(self) -> dict[str, Any]:
        """This variable as a JSON Schema for one value."""
        schema: dict[str, Any] = {"type": self.type}
        if self.type == "string":
            schema["maxLength"] = self.maxLength
            for key in ("pattern", "minLength"):
                if getattr(self, key) is not None:
                    schema[key] = getattr(self, key)
        if self.type in ("integer", "number"):
            for key in ("minimum", "maximum"):
                if getattr(self, key) is not None:
                    schema[key] = getattr(self, key)
        if self.enum is not None:
            schema["enum"] = list(self.enum)
        return schema


class Utterance(StrictModel):
    """Something the bot says: these exact words (`say`) or words the model finds (`prompt`)."""

    say: str | None = spec_field(
        description="These exact words." + _TEMPLATED,
        mutability=LIVE,
        min_length=1,
        max_length=4_000,
        examples=["Hi {{customer_name}}, thanks for calling."],
    )
    prompt: str | None = spec_field(
        description="An instruction the model answers with its own words." + _TEMPLATED,
        mutability=LIVE,
        min_length=1,
        max_length=4_000,
        examples=["Greet the caller by name and ask how you can help."],
    )


class OpeningSpec(Utterance):
    """How a call begins."""

    say: str | None = spec_field(
        description="These exact words." + _TEMPLATED,
        mutability=NEXT,
        min_length=1,
        max_length=4_000,
        examples=["Hi {{customer_name}}, thanks for calling."],
    )
    prompt: str | None = spec_field(
        description="An instruction the model answers with its own words." + _TEMPLATED,
        mutability=NEXT,
        min_length=1,
        max_length=4_000,
        examples=["Greet the caller by name and ask how you can help."],
    )

    mode: Literal["speak_first", "wait_for_user"] = spec_field(
        "speak_first",
        description="`speak_first`: the bot talks as soon as the model is ready (`say`, "
        "`prompt`, or neither: the model opens from its instructions); `wait_for_user`: "
        "the bot answers the caller's first words.",
        mutability=NEXT,
        enum_descriptions=["The bot talks first.", "The caller talks first."],
    )
    interruptible: bool = spec_field(
        True,
        description="Whether the caller's speech cuts the opening short. When false, speech "
        "during the opening is ignored until it has played.",
        mutability=NEXT,
    )
    delay_ms: int = spec_field(
        0,
        description="Milliseconds to wait after the model is ready before speaking.",
        mutability=NEXT,
        ge=0,
        le=30_000,
    )


class ContextItemSpec(StrictModel):
    """One item of history seeded before the first turn."""

    role: Literal["user", "assistant", "system"] = spec_field(
        ...,
        description="Who said it.",
        mutability=NEXT,
        enum_descriptions=["The caller.", "The bot.", "An instruction to the model."],
    )
    text: str = spec_field(
        ..., description="What was said." + _TEMPLATED, mutability=NEXT, min_length=1,
        max_length=20_000,
    )


class IdleSpec(Utterance):
    """What the bot does when the caller goes quiet."""

    after_s: float = spec_field(
        ...,
        description="Seconds of silence, from the end of the bot's speech with no user speech "
        "or text, before a prompt.",
        mutability=LIVE,
        gt=0,
        le=3_600,
        examples=[8],
    )
    max_prompts: int = spec_field(
        2,
        description="Prompts in a row before `then`. Speech or text from the caller starts "
        "the count again.",
        mutability=LIVE,
        ge=1,
        le=100,
    )
    then: Literal["end_call", "wait"] = spec_field(
        "end_call",
        description="After `max_prompts` unanswered prompts: hang up, or keep waiting.",
        mutability=LIVE,
        enum_descriptions=["Say `goodbye` if given, then hang up.", "Wait for the caller."],
    )
    goodbye: str | None = spec_field(
        description="Said before hanging up on a silent caller." + _TEMPLATED,
        mutability=LIVE,
        min_length=1,
        max_length=4_000,
    )


class EndCallSpec(StrictModel):
    """The built-in tool that lets the model end the call."""

    enabled: bool = spec_field(
        True, description="Offer the tool to the model.", mutability=NEXT
    )
    name: str = spec_field(
        "end_call",
        description="The function name the model sees.",
        mutability=NEXT,
        pattern=TOOL_NAME_PATTERN,
    )
    description: str = spec_field(
        "End the call. Use it when the caller says goodbye or the conversation is over.",
        description="When the model should call it." + _TEMPLATED,
        mutability=NEXT,
        min_length=1,
        max_length=4_000,
    )
    goodbye: str | None = spec_field(
        description="Said, word for word, before hanging up. Without it the model says its own "
        "goodbye." + _TEMPLATED,
        mutability=NEXT,
        min_length=1,
        max_length=4_000,
    )


class ConversationSpec(StrictModel):
    """The conversation of one model node: how it opens, what it already knows, what happens on
    silence, how long it may last and how it ends."""

    model: str | None = spec_field(
        description="The model node this conversation belongs to. Default: the spec's only "
        "model node.",
        mutability=NEXT,
        pattern=NODE_ID_PATTERN,
    )
    opening: OpeningSpec | None = spec_field(
        description="How a call begins. Without it the bot waits for the caller.",
        mutability=NEXT,
    )
    context: list[ContextItemSpec] = spec_field(
        default_factory=list,
        description="History seeded before the first turn, in order (and again after the "
        "model's connection is restored).",
        mutability=NEXT,
        max_length=MAX_CONTEXT_ITEMS,
    )
    idle: IdleSpec | None = spec_field(
        description="Prompts for a silent caller, then hang up. A change applies to live calls "
        "from their next silence.",
        mutability=LIVE,
    )
    max_duration_s: float | None = spec_field(
        description="Longest call in seconds; then `closing` is said and the call ends.",
        mutability=NEXT,
        gt=0,
        le=86_400,
        examples=[600],
    )
    closing: Utterance | None = spec_field(
        description="Said when `max_duration_s` is reached, before hanging up.",
        mutability=LIVE,
    )
    end_call: EndCallSpec | None = spec_field(
        description="A tool the model calls to end the call: the goodbye plays to its end, "
        "then the call hangs up (the page shows why, Twilio's call ends).",
        mutability=NEXT,
    )


VariableName = str
VARIABLES_FIELD: dict[str, Any] = dict(
    description="Per-call values, each a JSON Schema with an optional default, filled from the "
    "connection (the page's query string, Twilio `<Parameter>`s, `--var NAME=VALUE`) and "
    "checked before the model is contacted; `{{name}}` uses one. Only these names can be set "
    "from outside. Built in: " + ", ".join(f"`{name}`" for name in BUILTIN_VARIABLES) + ".",
    mutability=NEXT,
    max_length=MAX_VARIABLES,
)
VARIABLE_NAME_PATTERN = NAME_PATTERN
