"""Validate emulator output against the openai SDK's own pydantic models (reference §7.1-7.3)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from openai.types.audio.speech_create_params import SpeechCreateParams
from openai.types.beta.realtime import RealtimeClientEvent as BetaClientEvent
from openai.types.beta.realtime import RealtimeServerEvent as BetaServerEvent
from openai.types.realtime import RealtimeClientEvent as GAClientEvent
from openai.types.realtime import RealtimeServerEvent as GAServerEvent
from openai.types.responses import ResponseStreamEvent
from openai.types.responses.responses_server_event import ResponsesServerEvent
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

GA_SERVER: TypeAdapter[Any] = TypeAdapter(Annotated[GAServerEvent, Field(discriminator="type")])
BETA_SERVER: TypeAdapter[Any] = TypeAdapter(
    Annotated[BetaServerEvent, Field(discriminator="type")]
)
SSE_SERVER: TypeAdapter[Any] = TypeAdapter(
    Annotated[ResponseStreamEvent, Field(discriminator="type")]
)
WS_SERVER: TypeAdapter[Any] = TypeAdapter(
    Annotated[ResponsesServerEvent, Field(discriminator="type")]
)

GA_CLIENT: TypeAdapter[Any] = TypeAdapter(Annotated[GAClientEvent, Field(discriminator="type")])
BETA_CLIENT: TypeAdapter[Any] = TypeAdapter(
    Annotated[BetaClientEvent, Field(discriminator="type")]
)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SpeechUsage(_Strict):
    input_tokens: int
    output_tokens: int
    total_tokens: int


class SpeechAudioDeltaEvent(_Strict):
    type: Literal["speech.audio.delta"]
    audio: str


class SpeechAudioDoneEvent(_Strict):
    type: Literal["speech.audio.done"]
    usage: SpeechUsage


# The SDK types the speech request (`SpeechCreateParams`) but not the events of its SSE stream
# (it hands the stream over as bytes); these two follow OpenAI's API reference for
# `stream_format: "sse"`, and forbid any field it does not list.
SPEECH_SERVER: TypeAdapter[Any] = TypeAdapter(
    Annotated[SpeechAudioDeltaEvent | SpeechAudioDoneEvent, Field(discriminator="type")]
)
SPEECH_REQUEST: TypeAdapter[Any] = TypeAdapter(SpeechCreateParams)

ADAPTERS: dict[str | None, TypeAdapter[Any]] = {
    "ga": GA_SERVER,
    "beta": BETA_SERVER,
    "responses_http": SSE_SERVER,
    "responses_ws": WS_SERVER,
    "speech": SPEECH_SERVER,
}
CLIENT_ADAPTERS: dict[str | None, TypeAdapter[Any]] = {"ga": GA_CLIENT, "beta": BETA_CLIENT}

# Fields the SDK models do not declare but the live service sends (reference §7.2/§7.3):
# sessions carry server-only `object`, `id` and `expires_at` in `session.created/updated`.
ALLOWED_EXTRAS = {
    "session.object",
    "session.id",
    "session.expires_at",
}


def extras(model: Any, path: str = "") -> list[str]:
    """Every field a validated model tree holds that its SDK model does not declare."""
    found: list[str] = []
    if isinstance(model, BaseModel):
        for key in model.__pydantic_extra__ or {}:
            found.append(f"{path}.{key}" if path else key)
        for name in type(model).model_fields:
            found += extras(getattr(model, name), f"{path}.{name}" if path else name)
    elif isinstance(model, list):
        for value in model:
            found += extras(value, f"{path}[]")
    elif isinstance(model, dict):
        for key, value in model.items():
            found += extras(value, f"{path}.{key}")
    return found


def check(adapter: TypeAdapter[Any], event: dict[str, Any]) -> Any:
    """Validate one event; fail on unknown fields outside the allow-list."""
    if adapter is SSE_SERVER and event["type"] == "error" and "error" in event:
        # Known gap §7.3.1: the live SSE error is nested, which the SDK models only for
        # WebSocket mode; check it against that model instead.
        adapter = WS_SERVER
    model = adapter.validate_python(event)
    unknown = [name for name in extras(model) if name not in ALLOWED_EXTRAS]
    assert not unknown, f"{event['type']} has fields the SDK does not know: {unknown}"
    return model


def check_all(adapter: TypeAdapter[Any], events: list[dict[str, Any]]) -> None:
    assert events, "no events to check"
    for event in events:
        check(adapter, event)


def check_speech_request(body: dict[str, Any]) -> None:
    """A `POST /v1/audio/speech` body: the SDK's request type, and no key it does not know."""
    known = SpeechCreateParams.__required_keys__ | SpeechCreateParams.__optional_keys__
    assert set(body) <= known, f"the speech request has fields the SDK does not know: " \
        f"{sorted(set(body) - known)}"
    SPEECH_REQUEST.validate_python(body)


def check_client(dialect: str | None, event: dict[str, Any]) -> None:
    """Validate one client event of a Realtime or transcription connection."""
    model = CLIENT_ADAPTERS[dialect].validate_python(event)
    unknown = extras(model)
    assert not unknown, f"{event['type']} has fields the SDK does not know: {unknown}"
