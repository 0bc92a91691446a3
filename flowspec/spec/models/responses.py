"""`openai.responses`: the Responses API node, over a persistent WebSocket or HTTP with SSE."""

from __future__ import annotations

from typing import ClassVar, Literal

from flowspec.spec.models.base import Mutability, StrictModel, spec_field
from flowspec.spec.models.openai_common import OpenAINodeSpec, ReasoningSpec

LIVE = Mutability.LIVE
NEXT = Mutability.NEXT_SESSION
STRUCT = Mutability.STRUCTURAL

RESPONSES_DEFAULT_MODEL = "gpt-4.1"


class ResponsesReasoningSpec(ReasoningSpec):
    summary: Literal["auto", "concise", "detailed"] | None = spec_field(
        description="Ask for a summary of the reasoning (emitted as thought frames).",
        mutability=LIVE,
    )


class ResponsesSettingsSpec(StrictModel):
    """Runtime settings; an omitted one is not sent. They apply from the next request on."""

    model: str = spec_field(
        RESPONSES_DEFAULT_MODEL,
        description="Model used for each response.",
        mutability=LIVE,
        examples=["gpt-4.1", "gpt-4.1-mini", "gpt-5", "o4-mini"],
    )
    system_instruction: str | None = spec_field(
        description="System instructions (sent as `instructions`).",
        mutability=LIVE,
        examples=["You are a helpful assistant."],
    )
    temperature: float | None = spec_field(
        description="Sampling temperature, 0–2.", mutability=LIVE, provider_default=1.0, ge=0, le=2
    )
    top_p: float | None = spec_field(
        description="Nucleus sampling, 0–1.", mutability=LIVE, provider_default=1.0, ge=0, le=1
    )
    frequency_penalty: float | None = spec_field(
        description="Accepted for parity with the seed; the Responses API has no such parameter, "
        "so it is not sent (`flowspec validate` warns).",
        mutability=LIVE,
        ge=-2,
        le=2,
    )
    presence_penalty: float | None = spec_field(
        description="Accepted for parity with the seed; not sent (the Responses API has no such "
        "parameter).",
        mutability=LIVE,
        ge=-2,
        le=2,
    )
    seed: int | None = spec_field(
        description="Accepted for parity with the seed; not sent (the Responses API has no such "
        "parameter).",
        mutability=LIVE,
    )
    max_completion_tokens: int | None = spec_field(
        description="Most tokens in one response, reasoning included (sent as "
        "`max_output_tokens`).",
        mutability=LIVE,
        ge=1,
    )
    reasoning: ResponsesReasoningSpec | None = spec_field(
        description="Reasoning configuration (reasoning models only: o-series, gpt-5). Encrypted "
        "reasoning is kept in the context so `store: false` works.",
        mutability=LIVE,
    )


class ResponsesNodeSpec(OpenAINodeSpec):
    """OpenAI Responses API: text in, text out, with tools; context kept per session."""

    type: Literal["openai.responses"] = spec_field(
        ..., description="OpenAI Responses API.", mutability=STRUCT
    )
    kind: ClassVar[str] = "model"

    transport: Literal["websocket", "http"] = spec_field(
        "websocket",
        description="`websocket`: one persistent connection per session, sending only new items "
        "with `previous_response_id` when it can. `http`: POST with SSE streaming, full context "
        "each time.",
        mutability=NEXT,
        enum_descriptions=[
            "Persistent WebSocket to `ws_url`.", "HTTP POST with SSE to `base_url`."
        ],
    )
    base_url: str = spec_field(
        "https://api.openai.com/v1",
        description="HTTP base URL; requests go to `{base_url}/responses`.",
        mutability=NEXT,
        privileged=True,
        pattern=r"^https?://",
    )
    ws_url: str = spec_field(
        "wss://api.openai.com/v1/responses",
        description="WebSocket URL of Responses WebSocket mode.",
        mutability=NEXT,
        privileged=True,
        pattern=r"^wss?://",
    )
    service_tier: Literal["auto", "default", "flex", "scale", "priority"] | None = spec_field(
        description="Processing tier for requests.",
        mutability=NEXT,
        provider_default="auto",
    )
    store: bool = spec_field(
        False,
        description="Let OpenAI store responses. Off by default: the context lives in the session "
        "and over WebSocket in the connection's cache.",
        mutability=NEXT,
    )
    retry_timeout_secs: float = spec_field(
        5.0,
        description="Seconds to wait for a response to start before it counts as timed out "
        "(`on_completion_timeout`).",
        mutability=NEXT,
        gt=0,
    )
    retry_on_timeout: bool = spec_field(
        False, description="Retry once when a request times out.", mutability=NEXT
    )
    reconnect_on_error: bool = spec_field(
        True,
        description="WebSocket transport: reconnect (with backoff) when the connection fails.",
        mutability=NEXT,
    )
    ws_close_timeout: float = spec_field(
        2.0, description="Seconds allowed for a clean WebSocket close.", mutability=NEXT, gt=0
    )
    settings: ResponsesSettingsSpec = spec_field(
        default_factory=ResponsesSettingsSpec,
        description="Runtime settings: hot-reloadable.",
        mutability=LIVE,
    )
