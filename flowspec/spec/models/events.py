"""Events out: `events.webhook` tells another system what happened on each call."""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import SecretStr

from flowspec.spec.models.base import Mutability, NodeSpec, spec_field

NEXT = Mutability.NEXT_SESSION
STRUCT = Mutability.STRUCTURAL

EventType = Literal["call.started", "transcript", "tool.called", "flow.transition",
                    "call.ended"]
EVENT_TYPES: tuple[str, ...] = ("call.started", "transcript", "tool.called", "flow.transition",
                                "call.ended")
EVENT_DESCRIPTIONS = [
    "The call began: its variables and transport.",
    "One user or bot conversation item, as it completes.",
    "A tool call ended: name, arguments, outcome and time taken.",
    "The call ended: reason, duration, the whole transcript and token usage.",
]


class WebhookSpec(NodeSpec):
    """POSTs signed JSON about each call to a URL. It never slows or fails a call: each session's
    events wait in a bounded queue, and what cannot be sent is dropped and counted."""

    kind: ClassVar[str] = "events"

    type: Literal["events.webhook"] = spec_field(
        ..., description="Call events POSTed to a URL.", mutability=STRUCT
    )
    url: str = spec_field(
        ...,
        description="http(s) URL receiving each event as a JSON POST.",
        mutability=NEXT,
        privileged=True,
        pattern=r"^https?://",
        examples=["https://hooks.example.com/flowspec"],
    )
    events: list[EventType] = spec_field(
        default_factory=lambda: list(EVENT_TYPES),
        description="The events to send (default: all).",
        mutability=NEXT,
        min_length=1,
        examples=[["call.started", "call.ended"]],
    )
    secret: SecretStr | None = spec_field(
        description="Signs each body: `X-Flowspec-Signature: t=<unix time>,v1=<hex "
        "HMAC-SHA256 of \"<t>.<body>\">`. Use `${VAR}`; never printed.",
        mutability=NEXT,
        secret=True,
        examples=["${WEBHOOK_SECRET}"],
    )
    headers: dict[str, str] = spec_field(
        default_factory=dict,
        description="Extra request headers (values may use `${VAR}`; never printed).",
        mutability=NEXT,
        privileged=True,
        secret=True,
    )
    metadata: dict[str, Any] = spec_field(
        default_factory=dict,
        description="Added to every event as `metadata`; strings may use `{{name}}` variables.",
        mutability=NEXT,
        examples=[{"customer": "{{customer_name}}"}],
    )
    timeout_s: float = spec_field(
        5.0,
        description="Seconds one attempt may take.",
        mutability=NEXT,
        gt=0,
        le=60,
    )
    max_retries: int = spec_field(
        3,
        description="Attempts after the first, for no answer, a timeout, HTTP 408, 429 or 5xx; "
        "the pause doubles from `backoff_s`.",
        mutability=NEXT,
        ge=0,
        le=10,
    )
    backoff_s: float = spec_field(
        0.5,
        description="Pause before the first retry.",
        mutability=NEXT,
        gt=0,
        le=30,
    )
    queue_size: int = spec_field(
        100,
        description="Events one call may have waiting; more are dropped and counted "
        "(`flowspec_webhook_events_total{outcome=\"dropped\"}`).",
        mutability=NEXT,
        ge=1,
        le=10_000,
    )
    allow_private_network: bool = spec_field(
        False,
        description="Allow `url` to reach loopback, link-local, private and other non-public "
        "addresses, as `tool.http` does.",
        mutability=NEXT,
        privileged=True,
    )
