"""Frames: the only values that travel along a graph's edges.

Every frame is a frozen, slotted, keyword-only dataclass whose class carries a `lane`:

- `system`: lifecycle and urgent control. Overtakes queued data on every edge, never dropped.
- `control`: ordered with data, never dropped by overflow nor flushed by an interrupt.
- `data`: audio, text, transcripts, images. Ordered, bounded, flushed by an interrupt.

Names follow one rule: notifications are past tense (`ResponseStartedFrame`), requests are
imperative (`InterruptFrame`). This module imports nothing from flowspec.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, ClassVar, Literal


class Lane(Enum):
    """How the executor schedules a frame class (see the module docstring)."""

    SYSTEM = "system"
    CONTROL = "control"
    DATA = "data"


AudioEncoding = Literal["pcm16", "pcmu", "pcma"]
Role = Literal["user", "assistant"]

_BYTES_PER_SAMPLE: Mapping[str, int] = {"pcm16": 2, "pcmu": 1, "pcma": 1}


@dataclass(frozen=True, slots=True, kw_only=True)
class Frame:
    """Base of every frame. Subclasses set `lane`; change a frame with `dataclasses.replace`."""

    lane: ClassVar[Lane] = Lane.DATA


# -- data -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class AudioFrame(Frame):
    """Raw audio (never base64). `timestamp_ms` is the media time of the first sample, if known;
    `item_id` names the assistant item the audio belongs to, for truncation on interruption."""

    audio: bytes
    encoding: AudioEncoding = "pcm16"
    sample_rate: int = 24000
    channels: int = 1
    timestamp_ms: float | None = None
    item_id: str | None = None

    @property
    def duration_ms(self) -> float:
        width = _BYTES_PER_SAMPLE[self.encoding] * self.channels
        return len(self.audio) / width / self.sample_rate * 1000.0


@dataclass(frozen=True, slots=True, kw_only=True)
class TextFrame(Frame):
    """Text: typed by the user (`role="user"`) or produced by the model, possibly as a delta."""

    text: str
    role: Role = "assistant"
    item_id: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class TranscriptFrame(Frame):
    """A transcript of speech: interim (`final=False`, may be revised) or final."""

    text: str
    role: Role
    final: bool
    item_id: str | None = None
    language: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ImageFrame(Frame):
    """An encoded image (for example one video frame) to show the model."""

    image: bytes
    mime_type: str = "image/jpeg"
    width: int | None = None
    height: int | None = None
    detail: Literal["auto", "low", "high"] = "auto"


@dataclass(frozen=True, slots=True, kw_only=True)
class ThoughtFrame(Frame):
    """A piece of the model's reasoning summary (a delta), for display; never spoken. Deltas of
    one reasoning item share `item_id`."""

    text: str
    item_id: str | None = None


# -- control ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class FunctionCallFrame(Frame):
    """The model asks for a tool call. `arguments` is the JSON text exactly as the model sent it."""

    lane: ClassVar[Lane] = Lane.CONTROL
    call_id: str
    name: str
    arguments: str = "{}"


@dataclass(frozen=True, slots=True, kw_only=True)
class FunctionResultFrame(Frame):
    """A tool's answer to one call. A failed call still answers, with `is_error=True`.
    `cancelled` marks the answer to a call an interruption cancelled: it belongs in the
    conversation (the call item needs an output) but asks for no new response."""

    lane: ClassVar[Lane] = Lane.CONTROL
    call_id: str
    name: str
    result: str
    is_error: bool = False
    cancelled: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class ResponseStartedFrame(Frame):
    """The model began a response."""

    lane: ClassVar[Lane] = Lane.CONTROL
    response_id: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ResponseEndedFrame(Frame):
    """The model finished a response (`status` as the provider reports it)."""

    lane: ClassVar[Lane] = Lane.CONTROL
    response_id: str | None = None
    status: str = "completed"


@dataclass(frozen=True, slots=True, kw_only=True)
class BotSpeechStartedFrame(Frame):
    """The output transport began playing assistant audio."""

    lane: ClassVar[Lane] = Lane.CONTROL
    item_id: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class BotSpeechEndedFrame(Frame):
    """The output transport finished (or stopped) playing assistant audio."""

    lane: ClassVar[Lane] = Lane.CONTROL
    item_id: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class PlaybackProgressFrame(Frame):
    """How much of an assistant item the output transport has actually played, so that the model
    node can truncate the item to what the user heard."""

    lane: ClassVar[Lane] = Lane.CONTROL
    item_id: str
    played_ms: int


@dataclass(frozen=True, slots=True, kw_only=True)
class SettingsAppliedFrame(Frame):
    """A node applied new settings; `changed` lists the settings paths that changed."""

    lane: ClassVar[Lane] = Lane.CONTROL
    node_id: str
    changed: tuple[str, ...]
    version: int


@dataclass(frozen=True, slots=True, kw_only=True)
class UpdateSettingsFrame(Frame):
    """Asks a model node to apply a settings delta (JSON-like values, only the changed keys)."""

    lane: ClassVar[Lane] = Lane.CONTROL
    delta: Mapping[str, Any]
    version: int


@dataclass(frozen=True, slots=True, kw_only=True)
class PauseInputFrame(Frame):
    """Asks a node to stop forwarding one kind of input (`audio` or `video`) until resumed."""

    lane: ClassVar[Lane] = Lane.CONTROL
    kind: Literal["audio", "video"] = "audio"


@dataclass(frozen=True, slots=True, kw_only=True)
class ResumeInputFrame(Frame):
    """Asks a node to resume forwarding input paused by `PauseInputFrame`."""

    lane: ClassVar[Lane] = Lane.CONTROL
    kind: Literal["audio", "video"] = "audio"


@dataclass(frozen=True, slots=True, kw_only=True)
class CommitInputFrame(Frame):
    """Ends the user's turn in manual turn mode: commit the input and ask for a response."""

    lane: ClassVar[Lane] = Lane.CONTROL


@dataclass(frozen=True, slots=True, kw_only=True)
class ResetConversationFrame(Frame):
    """Asks a model node to forget the conversation so far."""

    lane: ClassVar[Lane] = Lane.CONTROL


# -- system -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class StartFrame(Frame):
    """Sent by the executor to every node once the whole session is wired and started. Nodes need
    not forward it: the executor ignores it when a node emits it."""

    lane: ClassVar[Lane] = Lane.SYSTEM
    session_id: str


@dataclass(frozen=True, slots=True, kw_only=True)
class EndFrame(Frame):
    """Emitted by a node to end its session gracefully: queued frames are delivered first."""

    lane: ClassVar[Lane] = Lane.SYSTEM
    reason: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class CancelFrame(Frame):
    """Emitted by a node to end its session now: queued frames are discarded."""

    lane: ClassVar[Lane] = Lane.SYSTEM
    reason: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class InterruptFrame(Frame):
    """Barge-in. The executor discards queued data frames towards every node downstream of the
    emitter (control frames stay), cancels their suspended calls on data frames, and delivers
    this frame to each of them at once. Nodes need not forward it."""

    lane: ClassVar[Lane] = Lane.SYSTEM
    reason: str = "user_speech"


@dataclass(frozen=True, slots=True, kw_only=True)
class UserSpeechStartedFrame(Frame):
    """Voice activity detection heard the user start speaking."""

    lane: ClassVar[Lane] = Lane.SYSTEM
    audio_start_ms: int | None = None
    item_id: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class UserSpeechEndedFrame(Frame):
    """Voice activity detection heard the user stop speaking."""

    lane: ClassVar[Lane] = Lane.SYSTEM
    audio_end_ms: int | None = None
    item_id: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ErrorFrame(Frame):
    """A node failed. The executor emits it on the failing node's outputs; `fatal` means the
    session is ending because of it."""

    lane: ClassVar[Lane] = Lane.SYSTEM
    node_id: str
    message: str
    fatal: bool = False
    code: str | None = None
    details: Mapping[str, Any] = field(default_factory=dict)


FRAME_TYPES: tuple[type[Frame], ...] = (
    AudioFrame,
    TextFrame,
    TranscriptFrame,
    ImageFrame,
    FunctionCallFrame,
    FunctionResultFrame,
    ResponseStartedFrame,
    ResponseEndedFrame,
    BotSpeechStartedFrame,
    BotSpeechEndedFrame,
    PlaybackProgressFrame,
    SettingsAppliedFrame,
    UpdateSettingsFrame,
    PauseInputFrame,
    ResumeInputFrame,
    CommitInputFrame,
    ResetConversationFrame,
    StartFrame,
    EndFrame,
    CancelFrame,
    InterruptFrame,
    UserSpeechStartedFrame,
    UserSpeechEndedFrame,
    ErrorFrame,
    ThoughtFrame,
)
"""Every concrete frame type, for tests and for serialisers that need the full vocabulary."""


# -- added with the transports ----------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class DTMFFrame(Frame):
    """The caller pressed a key on the phone keypad (`0`-`9`, `*`, `#`, `A`-`D`)."""

    digit: str


FRAME_TYPES = (*FRAME_TYPES, DTMFFrame)
