"""`openai.realtime`: the GA Realtime API node and its nested session shape."""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal

from pydantic import Field, model_validator

from flowspec.spec.models.base import Mutability, StrictModel, spec_field
from flowspec.spec.models.openai_common import (
    NoiseReductionSpec,
    OpenAINodeSpec,
    ReasoningSpec,
    SemanticVadSpec,
    check_given_once,
    create_response_field,
    interrupt_response_field,
    transcription_language_field,
    vad_prefix_padding_field,
    vad_silence_field,
    vad_threshold_field,
)

LIVE = Mutability.LIVE
NEXT = Mutability.NEXT_SESSION
STRUCT = Mutability.STRUCTURAL

GA_DEFAULT_MODEL = "gpt-realtime-1.5"
GA_VOICES = [
    "alloy", "ash", "ballad", "coral", "echo", "sage", "shimmer", "verse", "marin", "cedar"
]
GA_VOICE_DESCRIPTIONS = [
    "Built-in voice; the server's default.",
    *["Built-in voice (also in the beta dialect)."] * 7,
    "Built-in voice, GA only; recommended by OpenAI.",
    "Built-in voice, GA only; recommended by OpenAI.",
]
CUSTOM_VOICE_PATTERN = r"^voice_[A-Za-z0-9_-]+$"
TRANSCRIPTION_MODELS = [
    "whisper-1",
    "gpt-4o-transcribe",
    "gpt-4o-mini-transcribe",
    "gpt-4o-mini-transcribe-2025-12-15",
    "gpt-4o-transcribe-diarize",
    "gpt-transcribe",
    "gpt-live-transcribe",
    "gpt-realtime-whisper",
]


class PcmFormatSpec(StrictModel):
    type: Literal["audio/pcm"] = spec_field(
        ..., description="16-bit little-endian mono PCM.", mutability=STRUCT
    )
    rate: Literal[24000] = spec_field(
        24000, description="Sample rate; the API accepts only 24000.", mutability=STRUCT
    )


class PcmuFormatSpec(StrictModel):
    type: Literal["audio/pcmu"] = spec_field(
        ..., description="G.711 μ-law, 8 kHz (telephony, e.g. Twilio).", mutability=STRUCT
    )


class PcmaFormatSpec(StrictModel):
    type: Literal["audio/pcma"] = spec_field(
        ..., description="G.711 A-law, 8 kHz.", mutability=STRUCT
    )


AudioFormatSpec = Annotated[
    PcmFormatSpec | PcmuFormatSpec | PcmaFormatSpec, Field(discriminator="type")
]


class TranscriptionSpec(StrictModel):
    """Transcription of the user's audio (runs beside the model; off unless given)."""

    model: str = spec_field(
        ...,
        description="Transcription model.",
        mutability=LIVE,
        examples=TRANSCRIPTION_MODELS,
    )
    language: str | None = transcription_language_field()
    prompt: str | None = spec_field(
        description="Text to guide the transcription (vocabulary, spelling). Not supported by "
        "`gpt-realtime-whisper`.",
        mutability=LIVE,
    )
    delay: Literal["minimal", "low", "medium", "high", "xhigh"] | None = spec_field(
        description="Latency/accuracy trade-off (`gpt-realtime-whisper` only).", mutability=LIVE
    )


class ServerVadSpec(StrictModel):
    """Turn detection by an energy-based detector on the server."""

    type: Literal["server_vad"] = spec_field(
        ..., description="Server voice activity detection.", mutability=LIVE
    )
    threshold: float | None = vad_threshold_field()
    prefix_padding_ms: int | None = vad_prefix_padding_field()
    silence_duration_ms: int | None = vad_silence_field(500)
    idle_timeout_ms: int | None = spec_field(
        description="Prompt the model after this long without speech, in milliseconds.",
        mutability=LIVE,
        ge=0,
    )
    create_response: bool | None = create_response_field()
    interrupt_response: bool | None = interrupt_response_field()


TurnDetectionSpec = Annotated[ServerVadSpec | SemanticVadSpec, Field(discriminator="type")]


class AudioInputSpec(StrictModel):
    format: AudioFormatSpec | None = spec_field(
        description="Format of the audio sent to the model. The compiler inserts a converter "
        "when the transport's audio differs.",
        mutability=STRUCT,
        provider_default={"type": "audio/pcm", "rate": 24000},
    )
    transcription: TranscriptionSpec | Literal[False] | None = spec_field(
        description="Transcribe the user's audio. `false` turns it off.",
        mutability=LIVE,
        examples=[{"model": "gpt-4o-transcribe"}],
    )
    noise_reduction: NoiseReductionSpec | Literal[False] | None = spec_field(
        description="Input noise reduction. `false` turns it off.",
        mutability=LIVE,
    )
    turn_detection: TurnDetectionSpec | Literal[False] | None = spec_field(
        description="How the end of the user's turn is detected: `server_vad`, `semantic_vad`, "
        "or `false` for manual turns (sent as `null`).",
        mutability=LIVE,
        provider_default={"type": "server_vad"},
    )


class AudioOutputSpec(StrictModel):
    format: AudioFormatSpec | None = spec_field(
        description="Format of the model's audio.",
        mutability=STRUCT,
        provider_default={"type": "audio/pcm", "rate": 24000},
    )
    voice: str | None = spec_field(
        description="Voice of the model: a built-in name or a custom voice id. Cannot change "
        "once the session has produced audio.",
        mutability=Mutability.UNTIL_FIRST_AUDIO,
        provider_default="alloy",
        examples=GA_VOICES,
        enum_descriptions=GA_VOICE_DESCRIPTIONS,
        custom_pattern=CUSTOM_VOICE_PATTERN,
        pattern=r"^(alloy|ash|ballad|coral|echo|sage|shimmer|verse|marin|cedar|voice_[A-Za-z0-9_-]+)$",
    )
    speed: float | None = spec_field(
        description="Speaking speed, 0.25–1.5 (applies from the next turn).",
        mutability=LIVE,
        provider_default=1.0,
        ge=0.25,
        le=1.5,
    )


class AudioSpec(StrictModel):
    input: AudioInputSpec | None = spec_field(description="Input audio.", mutability=LIVE)
    output: AudioOutputSpec | None = spec_field(description="Output audio.", mutability=LIVE)


class TracingSpec(StrictModel):
    workflow_name: str | None = spec_field(description="Trace workflow name.", mutability=NEXT)
    group_id: str | None = spec_field(description="Trace group id.", mutability=NEXT)
    metadata: dict[str, Any] | None = spec_field(description="Trace metadata.", mutability=NEXT)


class PromptSpec(StrictModel):
    id: str = spec_field(..., description="Stored prompt id.", mutability=LIVE)
    version: str | None = spec_field(description="Prompt version.", mutability=LIVE)
    variables: dict[str, Any] | None = spec_field(
        description="Values for the prompt's variables.", mutability=LIVE
    )


TokenLimit = Annotated[int, Field(ge=1, le=4096)] | Literal["inf"]
"""What the Realtime API takes as a response's token limit: 1–4096, or `inf`."""
ToolChoiceMode = Literal["auto", "none", "required"]


class ToolChoiceFunctionSpec(StrictModel):
    type: Literal["function"] = spec_field(..., description="A function tool.", mutability=LIVE)
    name: str = spec_field(..., description="The function the model must call: one of the "
                           "node's tools.", mutability=LIVE)


class ToolChoiceMcpSpec(StrictModel):
    type: Literal["mcp"] = spec_field(..., description="A tool of an MCP server.",
                                      mutability=LIVE)
    server_label: str = spec_field(..., description="The MCP server's label.", mutability=LIVE)
    name: str | None = spec_field(description="The server's tool to call.", mutability=LIVE)


class RealtimeSessionPropertiesSpec(StrictModel):
    """The GA session (nested shape). Omitted fields are not sent: the server keeps its value."""

    output_modalities: list[Literal["audio", "text"]] | None = spec_field(
        description="What the model answers with: `[audio]` (audio with its transcript) or "
        "`[text]`. Exactly one.",
        mutability=LIVE,
        provider_default=["audio"],
        min_length=1,
        max_length=1,
    )
    instructions: str | None = spec_field(
        description="System instructions. Prefer `settings.system_instruction`, which wins when "
        "both are given.",
        mutability=LIVE,
    )
    audio: AudioSpec | None = spec_field(
        description="Input and output audio settings.", mutability=LIVE
    )
    tools: list[dict[str, Any]] | None = spec_field(
        description="Raw provider tool definitions (e.g. MCP servers), sent after the tools of the "
        "node's `tools:` list. Prefer tool nodes for functions.",
        mutability=LIVE,
    )
    tool_choice: ToolChoiceMode | ToolChoiceFunctionSpec | ToolChoiceMcpSpec | None = spec_field(
        description="`auto`, `none`, `required`, `{type: function, name}` naming one of the "
        "node's tools, or `{type: mcp, server_label, name}`.",
        mutability=LIVE,
        provider_default="auto",
        examples=["auto", "none", "required"],
    )
    max_output_tokens: TokenLimit | None = spec_field(
        description="Most tokens in one response (1–4096) or `inf`.",
        mutability=LIVE,
        provider_default="inf",
    )
    tracing: Literal["auto"] | TracingSpec | None = spec_field(
        description="Tracing: `auto` or a configuration. Immutable once enabled.",
        mutability=NEXT,
    )
    truncation: Literal["auto", "disabled"] | dict[str, Any] | None = spec_field(
        description="How old turns are dropped when the context is full.",
        mutability=LIVE,
        provider_default="auto",
    )
    prompt: PromptSpec | None = spec_field(description="Stored prompt template.", mutability=LIVE)
    include: list[Literal["item.input_audio_transcription.logprobs"]] | None = spec_field(
        description="Extra fields the server includes in events.", mutability=LIVE
    )
    reasoning: ReasoningSpec | None = spec_field(
        description="Reasoning effort (reasoning realtime models such as `gpt-realtime-2`).",
        mutability=LIVE,
    )
    parallel_tool_calls: bool | None = spec_field(
        description="Allow several tool calls in one turn (reasoning realtime models).",
        mutability=LIVE,
    )


class RealtimeSettingsSpec(StrictModel):
    """Runtime settings of the GA node: the hot-reloadable part."""

    model: str = spec_field(
        GA_DEFAULT_MODEL,
        description="Realtime model, chosen when a session connects (`?model=`).",
        mutability=NEXT,
        examples=["gpt-realtime-1.5", "gpt-realtime-2", "gpt-realtime-mini"],
    )
    system_instruction: str | None = spec_field(
        description="System instructions for the model (sent as the session's `instructions`).",
        mutability=LIVE,
        examples=["You are a helpful, concise assistant."],
    )
    session_properties: RealtimeSessionPropertiesSpec = spec_field(
        default_factory=RealtimeSessionPropertiesSpec,
        description="The session configuration, in OpenAI's GA shape.",
        mutability=LIVE,
    )


class RealtimeNodeSpec(OpenAINodeSpec):
    """OpenAI Realtime (GA): speech-to-speech over one WebSocket per session."""

    type: Literal["openai.realtime"] = spec_field(
        ..., description="OpenAI Realtime API, GA dialect.", mutability=STRUCT
    )
    kind: ClassVar[str] = "model"

    base_url: str = spec_field(
        "wss://api.openai.com/v1/realtime",
        description="WebSocket URL of the Realtime API; the session connects to "
        "`{base_url}?model={model}`.",
        mutability=NEXT,
        privileged=True,
        pattern=r"^(wss?|https?)://",
    )
    model: str | None = spec_field(
        description="Deprecated: the model is a setting.",
        mutability=NEXT,
        deprecated="Write `settings.model` instead of a top-level `model`.",
    )
    session_properties: RealtimeSessionPropertiesSpec | None = spec_field(
        description="Deprecated: the session configuration is a setting.",
        mutability=LIVE,
        deprecated="Write `settings.session_properties` instead of a top-level "
        "`session_properties`.",
    )
    start_audio_paused: bool = spec_field(
        False, description="Start with audio input paused (audio is dropped until resumed).",
        mutability=NEXT,
    )
    start_video_paused: bool = spec_field(
        False, description="Start with video input paused.", mutability=NEXT
    )
    video_frame_detail: Literal["auto", "low", "high"] = spec_field(
        "auto",
        description="Detail level of video frames sent as `input_image` (at most one per second).",
        mutability=NEXT,
    )
    user_audio_preroll_secs: float | None = spec_field(
        description="Manual turns only: seconds of recent user audio replayed after an "
        "interruption clears the input buffer. Unset chooses from the VAD settings.",
        mutability=NEXT,
        ge=0.0,
        le=5.0,
    )
    settings: RealtimeSettingsSpec = spec_field(
        default_factory=RealtimeSettingsSpec,
        description="Runtime settings: hot-reloadable.",
        mutability=LIVE,
    )

    @model_validator(mode="after")
    def _no_duplicate_settings(self) -> RealtimeNodeSpec:
        check_given_once({"model": self.model, "session_properties": self.session_properties},
                         self.settings, "under `settings` (the top-level form is deprecated)")
        return self

    def effective_settings(self) -> RealtimeSettingsSpec:
        """Settings with the deprecated top-level fields folded in."""
        update: dict[str, Any] = {}
        if self.model is not None:
            update["model"] = self.model
        if self.session_properties is not None:
            update["session_properties"] = self.session_properties
        if not update:
            return self.settings
        data = self.settings.model_dump(exclude_unset=True)
        data.update({k: v.model_dump(exclude_unset=True) if isinstance(v, StrictModel) else v
                     for k, v in update.items()})
        return RealtimeSettingsSpec.model_validate(data)
