"""Validate emulator output against the openai SDK's own pydantic models (reference §7.1-7.3)."""

from __future__ import annotations

from typing import Annotated, Any

from openai.types.beta.realtime import RealtimeServerEvent as BetaServerEvent
from openai.types.realtime import RealtimeServerEvent as GAServerEvent
from openai.types.responses import ResponseStreamEvent
from openai.types.responses.responses_server_event import ResponsesServerEvent
from pydantic import BaseModel, Field, TypeAdapter

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

ADAPTERS: dict[str | None, TypeAdapter[Any]] = {
    "ga": GA_SERVER,
    "beta": BETA_SERVER,
    "responses_http": SSE_SERVER,
    "responses_ws": WS_SERVER,
}

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
