"""`openai.transcribe` and `openai.speech`: the ears and the voice of a cascaded bot.

`openai.transcribe` streams the caller's audio into a Realtime transcription session and turns
what it hears into user transcripts; `openai.speech` turns a model's text into audio with
`POST /v1/audio/speech`. Between them a Responses node holds a spoken conversation. The fields
mirror Pipecat's `OpenAIRealtimeSTTService` and `OpenAITTSService`.
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal

from pydantic import Field

from flowspec.spec.models.base import Mutability, StrictModel, spec_field
from flowspec.spec.models.openai_common import (
    OpenAIClientSpec,
    transcription_language_field,
    vad_prefix_padding_field,
    vad_silence_field,
    vad_threshold_field,
)
from flowspec.spec.models.realtime import CUSTOM_VOICE_PATTERN, TRANSCRIPTION_MODELS

LIVE = Mutability.LIVE
NEXT = Mutability.NEXT_SESSION
STRUCT = Mutability.STRUCTURAL

TRANSCRIBE_DEFAULT_MODEL = "gpt-4o-transcribe"
BETA_TRANSCRIPTION_MODELS = ("gpt-4o-transcribe", "gpt-4o-mini-transcribe", "whisper-1")
SPEECH_DEFAULT_MODEL = "gpt-4o-mini-tts"
SPEECH_MODELS = ["gpt-4o-mini-tts", "gpt-4o-mini-tts-2025-12-15", "tts-1", "tts-1-hd"]
SPEECH_VOICES = ["alloy", "ash", "ballad", "coral", "echo", "fable", "onyx", "nova", "sage",
                 "shimmer", "verse", "marin", "cedar"]
LOGPROBS = "item.input_audio_transcription.logprobs"


# -- openai.transcribe ----------------------------------------------------------------------


class TranscribeServerVadSpec(StrictModel):
    """Turn detection by an energy-based detector on the server."""

    type: Literal["server_vad"] = spec_field(
        ..., description="Server voice activity detection.", mutability=LIVE
    )
    threshold: float | None = vad_threshold_field()
    prefix_padding_ms: int | None = vad_prefix_padding_field()
    silence_duration_ms: int | None = vad_silence_field(500)


class TranscribeSemanticVadSpec(StrictModel):
    """Turn detection by a model that judges whether the user has finished speaking."""

    type: Literal["semantic_vad"] = spec_field(
        ..., description="Semantic voice activity detection.", mutability=LIVE
    )
    eagerness: Literal["low", "medium", "high", "auto"] | None = spec_field(
        description="How soon a pause ends the turn: `low` waits longest, `auto` is `medium`.",
        mutability=LIVE,
        provider_default="auto",
    )


TranscribeTurnDetectionSpec = Annotated[
    TranscribeServerVadSpec | TranscribeSemanticVadSpec, Field(discriminator="type")
]


class TranscribeSettingsSpec(StrictModel):
    """Runtime settings; a change reaches live sessions as one `session.update`."""

    model: str = spec_field(
        TRANSCRIBE_DEFAULT_MODEL,
        description="Transcription model.",
        mutability=LIVE,
        examples=TRANSCRIPTION_MODELS,
    )
    language: str | None = transcription_language_field()
    prompt: str | None = spec_field(
        description="Text to guide the transcription (vocabulary, spelling). Not supported by "
        "`gpt-realtime-whisper`.",
        mutability=LIVE,
        examples=["Expect words about the weather and city names."],
    )
    noise_reduction: Literal["near_field", "far_field"] | None = spec_field(
        description="Input noise reduction: `near_field` for headsets, `far_field` for laptops "
        "and rooms. Omitted: off.",
        mutability=LIVE,
        enum_descriptions=["Close-talking microphone.", "Distant microphone."],
    )
    turn_detection: TranscribeTurnDetectionSpec | Literal[False] | None = spec_field(
        description="How the end of the user's speech is found: `server_vad`, `semantic_vad`, "
        "or `false` (sent as `null`): the audio is committed when a `commit` arrives from "
        "upstream (a local VAD's speech end, or the page's commit message).",
        mutability=LIVE,
        provider_default={"type": "server_vad"},
    )
    include: list[Literal["item.input_audio_transcription.logprobs"]] | None = spec_field(
        description="Extra fields in the server's transcription events.",
        mutability=LIVE,
        examples=[[LOGPROBS]],
    )


class TranscribeNodeSpec(OpenAIClientSpec):
    """Streaming speech-to-text over an OpenAI Realtime transcription session: audio in, user
    transcripts (interim and final) and the user's speech started/stopped out. Speech starting
    interrupts everything downstream (barge-in)."""

    type: Literal["openai.transcribe"] = spec_field(
        ..., description="OpenAI Realtime transcription session.", mutability=STRUCT
    )
    kind: ClassVar[str] = "speech"

    dialect: Literal["ga", "beta"] = spec_field(
        "ga",
        description="`ga`: `session.update` with `session.type: transcription`. `beta`: "
        "`transcription_session.update` with the `OpenAI-Beta: realtime=v1` header (servers "
        "that still speak it; OpenAI has retired it).",
        mutability=NEXT,
        enum_descriptions=["The GA Realtime API.", "The retired beta dialect."],
    )
    base_url: str = spec_field(
        "wss://api.openai.com/v1/realtime",
        description="Realtime WebSocket URL; `?intent=transcription` is added.",
        mutability=NEXT,
        privileged=True,
        pattern=r"^(wss?|https?)://",
    )
    should_interrupt: bool = spec_field(
        True,
        description="Interrupt the nodes downstream (the bot's reply and its audio) when the "
        "user starts speaking.",
        mutability=NEXT,
    )
    extra: dict[str, Any] = spec_field(
        default_factory=dict,
        description="Escape hatch: fields merged last into the session sent to the provider. "
        "Not checked by flowspec; `flowspec validate` lists them as unchecked.",
        mutability=NEXT,
    )
    settings: TranscribeSettingsSpec = spec_field(
        default_factory=TranscribeSettingsSpec,
        description="Runtime settings: hot-reloadable.",
        mutability=LIVE,
    )


# -- openai.speech --------------------------------------------------------------------------


class SpeechSettingsSpec(StrictModel):
    """Runtime settings; an omitted one is not sent. They apply from the next request on."""

    model: str = spec_field(
        SPEECH_DEFAULT_MODEL,
        description="Text-to-speech model.",
        mutability=LIVE,
        examples=SPEECH_MODELS,
    )
    voice: str = spec_field(
        "alloy",
        description="A built-in voice, or a custom voice id (`voice_…`).",
        mutability=LIVE,
        examples=SPEECH_VOICES,
        enum_descriptions=["Built-in voice."] * len(SPEECH_VOICES),
        custom_pattern=CUSTOM_VOICE_PATTERN,
    )
    instructions: str | None = spec_field(
        description="How to speak (tone, accent, pace). Not supported by `tts-1` and "
        "`tts-1-hd`.",
        mutability=LIVE,
        examples=["Speak warmly and a little slowly."],
    )
    speed: float | None = spec_field(
        description="Speaking speed, 0.25–4.0.",
        mutability=LIVE,
        provider_default=1.0,
        ge=0.25,
        le=4.0,
    )


class SpeechNodeSpec(OpenAIClientSpec):
    """Text-to-speech over `POST /v1/audio/speech`, streamed as 24 kHz PCM: the model's text in,
    audio out from the first sentence on. An interruption stops it at once."""

    type: Literal["openai.speech"] = spec_field(
        ..., description="OpenAI text-to-speech.", mutability=STRUCT
    )
    kind: ClassVar[str] = "speech"

    base_url: str = spec_field(
        "https://api.openai.com/v1",
        description="HTTP base URL; requests go to `{base_url}/audio/speech`.",
        mutability=NEXT,
        privileged=True,
        pattern=r"^https?://",
    )
    stream_format: Literal["audio", "sse"] = spec_field(
        "audio",
        description="`audio`: the body is the raw PCM stream. `sse`: server-sent "
        "`speech.audio.delta` events (not supported by `tts-1` and `tts-1-hd`).",
        mutability=NEXT,
        enum_descriptions=["Raw audio bytes.", "Server-sent events with base64 audio."],
    )
    timeout_s: float = spec_field(
        10.0,
        description="Seconds a request may take to start streaming audio before it fails.",
        mutability=NEXT,
        gt=0,
    )
    max_buffered_chars: int = spec_field(
        8000,
        description="Most text waiting to be spoken; the model's stream waits while more is "
        "queued.",
        mutability=NEXT,
        ge=256,
        le=100_000,
    )
    extra: dict[str, Any] = spec_field(
        default_factory=dict,
        description="Escape hatch: fields merged last into each request body. Not checked by "
        "flowspec; `flowspec validate` lists them as unchecked.",
        mutability=NEXT,
    )
    settings: SpeechSettingsSpec = spec_field(
        default_factory=SpeechSettingsSpec,
        description="Runtime settings: hot-reloadable.",
        mutability=LIVE,
    )
