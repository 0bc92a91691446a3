"""Fields shared by the OpenAI model nodes: connection settings, tool links, the `extra` hatch."""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import SecretStr

from flowspec.spec.models.base import Mutability, NodeSpec, StrictModel, spec_field

NEXT = Mutability.NEXT_SESSION
LIVE = Mutability.LIVE

NODE_ID_PATTERN = r"^[A-Za-z_][A-Za-z0-9_-]*$"

REASONING_EFFORTS = ["none", "minimal", "low", "medium", "high", "xhigh"]


def check_given_once(node_level: dict[str, object], settings: StrictModel, how: str) -> None:
    """Fields a Realtime node accepts both at node level and under `settings` may be given in one
    place only: two values would leave it unclear which one a session uses."""
    for name, value in node_level.items():
        if value is not None and name in settings.model_fields_set:
            raise ValueError(f"give `{name}` once: {how}")


# Fields both Realtime dialects declare alike: one definition each, so their docs cannot drift.


def vad_threshold_field() -> Any:
    return spec_field(
        description="Activation threshold, 0.0–1.0; higher needs louder audio.",
        mutability=LIVE,
        provider_default=0.5,
        ge=0.0,
        le=1.0,
    )


def vad_prefix_padding_field() -> Any:
    return spec_field(
        description="Audio kept before detected speech, in milliseconds.",
        mutability=LIVE,
        provider_default=300,
        ge=0,
    )


def vad_silence_field(provider_default_ms: int) -> Any:
    return spec_field(
        description="Silence that ends a turn, in milliseconds. Shorter answers sooner but may "
        "cut the user off.",
        mutability=LIVE,
        provider_default=provider_default_ms,
        ge=0,
    )


def create_response_field() -> Any:
    return spec_field(
        description="Create a response automatically when a turn ends.",
        mutability=LIVE,
        provider_default=True,
    )


def interrupt_response_field() -> Any:
    return spec_field(
        description="Interrupt an ongoing response when the user starts speaking.",
        mutability=LIVE,
        provider_default=True,
    )


def transcription_language_field() -> Any:
    return spec_field(
        description="ISO-639-1 language of the input (improves accuracy and latency).",
        mutability=LIVE,
        examples=["en", "fr"],
    )


class OpenAIClientSpec(NodeSpec):
    """Connection fields every node that talks to OpenAI has (Pipecat's constructor
    parameters)."""

    api_key: SecretStr | None = spec_field(
        description=(
            "OpenAI API key, sent as `Authorization: Bearer …`. Defaults to the `OPENAI_API_KEY` "
            "environment variable. Write `${OPENAI_API_KEY}` to require it; never write the key "
            "itself in a spec. With no key and no `base_url`, `flowspec serve` uses the built-in "
            "emulator."
        ),
        mutability=NEXT,
        secret=True,
        examples=["${OPENAI_API_KEY}"],
    )
    organization: str | None = spec_field(
        description="OpenAI organization id, sent as `OpenAI-Organization`.",
        mutability=NEXT,
        examples=["org-…"],
    )
    project: str | None = spec_field(
        description="OpenAI project id, sent as `OpenAI-Project`.",
        mutability=NEXT,
        examples=["proj_…"],
    )
    default_headers: dict[str, str] = spec_field(
        default_factory=dict,
        description=(
            "Extra HTTP headers sent when connecting (values may use `${VAR}`; they are treated as "
            "secrets and never printed)."
        ),
        mutability=NEXT,
        secret=True,
    )


class OpenAINodeSpec(OpenAIClientSpec):
    """An OpenAI model node: the connection fields, the tools it may call, the `extra` hatch."""

    kind: ClassVar[str] = "model"

    tools: list[str] = spec_field(
        default_factory=list,
        description=(
            "Ids of the tool nodes (`tool.python`, `tool.http`) this model may call. Their "
            "definitions are sent to the model in its dialect's shape."
        ),
        mutability=NEXT,
        examples=[["get_weather"]],
    )
    extra: dict[str, Any] = spec_field(
        default_factory=dict,
        description=(
            "Escape hatch: fields merged last into what is sent to the provider (the session for "
            "Realtime, the request body for Responses). Not checked by flowspec; `flowspec "
            "validate` lists them as unchecked."
        ),
        mutability=NEXT,
    )


class NoiseReductionSpec(StrictModel):
    type: Literal["near_field", "far_field"] = spec_field(
        ..., description="`near_field` for headsets and close microphones, `far_field` for laptops "
        "and conference rooms.",
        mutability=LIVE,
        enum_descriptions=["Close-talking microphone.", "Distant microphone."],
    )


class SemanticVadSpec(StrictModel):
    """Turn detection by a model that judges whether the user has finished speaking."""

    type: Literal["semantic_vad"] = spec_field(
        ..., description="Semantic voice activity detection.", mutability=LIVE
    )
    eagerness: Literal["low", "medium", "high", "auto"] | None = spec_field(
        description=(
            "How eagerly the model answers: `low` waits up to 8 s, `medium` 4 s, `high` 2 s; "
            "`auto` is `medium`."
        ),
        mutability=LIVE,
        provider_default="auto",
        enum_descriptions=[
            "Let the user take their time (up to 8 s).",
            "Balanced (up to 4 s).",
            "Answer quickly (up to 2 s).",
            "Same as medium.",
        ],
    )
    create_response: bool | None = create_response_field()
    interrupt_response: bool | None = interrupt_response_field()


class ReasoningSpec(StrictModel):
    effort: Literal["none", "minimal", "low", "medium", "high", "xhigh"] | None = spec_field(
        description="How much the model reasons before answering (reasoning models only).",
        mutability=LIVE,
        examples=["low"],
    )


