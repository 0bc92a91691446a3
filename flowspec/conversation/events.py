"""The conversation's own bus events: a call's start with its variables, each completed
transcript item, and the call ending with its reason. Webhooks, logs and scenario expectations
read these instead of each model node's provider-shaped items."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from flowspec.runtime.bus import BusEvent


@dataclass(frozen=True, slots=True, kw_only=True)
class CallStarted(BusEvent):
    """A call's variables were resolved and its model is being contacted."""

    transport: str
    variables: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class TranscriptItem(BusEvent):
    """A user or bot conversation item is complete: what the caller said (its transcription or
    typed text) or what the bot said (as played: cut short at a barge-in)."""

    node_id: str
    item_id: str
    role: Literal["user", "assistant"]
    text: str
    interrupted: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class CallEnding(BusEvent):
    """A call is ending: `reason` is why (`end_call`, `idle`, `max_duration`, `hangup`, ...),
    `detail` a sentence for the caller and logs."""

    reason: str
    detail: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class CallRefused(BusEvent):
    """A call was refused before its model was contacted (its variables broke the spec)."""

    code: str
    message: str


@dataclass(frozen=True, slots=True, kw_only=True)
class FlowTransition(BusEvent):
    """A call moved from one flow state to another because of a tool's call."""

    node_id: str
    source: str
    target: str
    tool: str


@dataclass(frozen=True, slots=True, kw_only=True)
class FlowTransitionRefused(BusEvent):
    """The provider refused the update of a move: the call stays in `source`."""

    node_id: str
    source: str
    target: str
    message: str
