"""`openai.realtime_beta`: the legacy beta Realtime dialect (flat session shape, beta header)."""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal

from pydantic import Field, model_validator

from flowspec.spec.models.base import Mutability, StrictModel, spec_field
from flowspec.spec.models.openai_common import (
    NoiseReductionSpec,
    OpenAINodeSpec,
    SemanticVadSpec,
    check_given_once,
    create_response_field,
    interrupt_response_field,
    transcription_language_field,
    vad_prefix_padding_field,
    vad_silence_field,
    vad_threshold_field,
)
from flowspec.spec.models.realtime import (
    TokenLimit,
    ToolChoiceFunctionSpec,
    ToolChoiceMode,
    TracingSpec,
)

LIVE = Mutability.LIVE
NEXT = Mutability.NEXT_SESSION
STRUCT = Mutability.STRUCTURAL

BETA_DEFAULT_MODEL = "gpt-4o-realtime-preview-2025-06-03"
BETA_VOICES = ["alloy", "ash", "ballad", "coral", "echo", "sage", "shimmer", "verse"]
BETA_MODELS = [
    "gpt-realtime",
    "gpt-realtime-2025-08-28",
    "gpt-4o-realtime-preview",
    "gpt-4o-realtime-preview-2024-10-01",
    "gpt-4o-realtime-preview-2024-12-17",
    "gpt-4o-realtime-preview-2025-06-03",
    "gpt-4o-mini-realtime-preview",
    "gpt-4o-mini-realtime-preview-2024-12-17",
]
BetaAudioFormat = Literal["pcm16", "g711_ulaw", "g711_alaw"]


class BetaTranscriptionSpec(StrictModel):
    model: Literal["whisper-1", "gpt-4o-transcribe", "gpt-4o-mini-transcribe"] = spec_field(
        ..., description="Transcription model.", mutability=LIVE
    )
    language: str | None = transcription_language_field()
    prompt: str | None = spec_field(
        description="Text to guide the transcription.", mutability=LIVE
    )


class BetaServerVadSpec(StrictModel):
    type: Literal["server_vad"] = spec_field(
        ..., description="Server voice activity detection.", mutability=LIVE
    )
    threshold: float | None = vad_threshold_field()
    prefix_padding_ms: int | None = vad_prefix_padding_field()
    silence_duration_ms: int | None = vad_silence_field(800)
    create_response: bool | None = create_response_field()
    interrupt_response: bool | None = interrupt_response_field()

BetaTurnDetectionSpec = Annotated[BetaServerVadSpec | SemanticVadSpec, Field(discriminator="type")]


class BetaSessionPropertiesSpec(StrictModel):
    """The beta session (flat shape). Omitted fields are not sent."""

    modalities: list[Literal["text", "audio"]] | None = spec_field(
        description="`[text, audio]` for spoken answers, `[text]` for text only.",
        mutability=LIVE,
        provider_default=["text", "audio"],
        min_length=1,
        max_length=2,
    )
    instructions: str | None = spec_field(
        description="System instructions. Prefer `settings.system_instruction`.", mutability=LIVE
    )
    voice: Literal["alloy", "ash", "ballad", "coral", "echo", "sage", "shimmer", "verse"] | None = (
        spec_field(
            description="Voice of the model. Cannot change once the session has produced audio.",
            mutability=Mutability.UNTIL_FIRST_AUDIO,
            provider_default="alloy",
            enum_descriptions=[
                "Built-in voice; the server's default.",
                *["Built-in voice."] * 7,
            ],
        )
    )
    input_audio_format: BetaAudioFormat | None = spec_field(
        description="Format of the audio sent to the model (PCM16 is 24 kHz; G.711 is 8 kHz).",
        mutability=STRUCT,
        provider_default="pcm16",
    )
    output_audio_format: BetaAudioFormat | None = spec_field(
        description="Format of the model's audio.", mutability=STRUCT, provider_default="pcm16"
    )
    input_audio_transcription: BetaTranscriptionSpec | Literal[False] | None = spec_field(
        description="Transcribe the user's audio. `false` turns it off.",
        mutability=LIVE,
        examples=[{"model": "gpt-4o-transcribe"}],
    )
    input_audio_noise_reduction: NoiseReductionSpec | Literal[False] | None = spec_field(
        description="Input noise reduction. `false` turns it off.", mutability=LIVE
    )
    turn_detection: BetaTurnDetectionSpec | Literal[False] | None = spec_field(
        description="`server_vad`, `semantic_vad`, or `false` for manual turns (sent as `null`).",
        mutability=LIVE,
        provider_default={"type": "server_vad"},
    )
    tools: list[dict[str, Any]] | None = spec_field(
        description="Raw provider tool definitions, sent after the node's tool nodes.",
        mutability=LIVE,
    )
    tool_choice: ToolChoiceMode | ToolChoiceFunctionSpec | None = spec_field(
        description="`auto`, `none`, `required`, or `{type: function, name}` naming one of the "
        "node's tools.",
        mutability=LIVE,
        provider_default="auto",
        examples=["auto", "none", "required"],
    )
    temperature: float | None = spec_field(
        description="Sampling temperature, 0.6–1.2.",
        mutability=LIVE,
        provider_default=0.8,
        ge=0.6,
        le=1.2,
    )
    max_response_output_tokens: TokenLimit | None = spec_field(
        description="Most tokens in one response (1–4096) or `inf`.",
        mutability=LIVE,
        provider_default="inf",
    )
    speed: float | None = spec_field(
        description="Speaking speed, 0.25–1.5.",
        mutability=LIVE,
        provider_default=1.0,
        ge=0.25,
        le=1.5,
    )
    tracing: Literal["auto"] | TracingSpec | None = spec_field(
        description="Tracing: `auto` or a configuration. Immutable once enabled.", mutability=NEXT
    )


class RealtimeBetaSettingsSpec(StrictModel):
    model: str = spec_field(
        BETA_DEFAULT_MODEL,
        description="Realtime model, chosen when a session connects.",
        mutability=NEXT,
        examples=BETA_MODELS,
    )
    system_instruction: str | None = spec_field(
        description="System instructions (sent as the session's `instructions`).",
        mutability=LIVE,
    )
    session_properties: BetaSessionPropertiesSpec = spec_field(
        default_factory=BetaSessionPropertiesSpec,
        description="The session configuration, in the beta (flat) shape.",
        mutability=LIVE,
    )


class RealtimeBetaNodeSpec(OpenAINodeSpec):
    """OpenAI Realtime, legacy beta dialect (`OpenAI-Beta: realtime=v1`).

    OpenAI's own servers have retired it; use it for servers that still speak it.
    """

    type: Literal["openai.realtime_beta"] = spec_field(
        ..., description="OpenAI Realtime API, legacy beta dialect.", mutability=STRUCT
    )
    kind: ClassVar[str] = "model"

    base_url: str = spec_field(
        "wss://api.openai.com/v1/realtime",
        description="WebSocket URL; the session connects to `{base_url}?model={model}` with the "
        "beta header.",
        mutability=NEXT,
        privileged=True,
        pattern=r"^(wss?|https?)://",
    )
    model: str | None = spec_field(
        description="The model, at node level as the seed accepts it (or under `settings`).",
        mutability=NEXT,
        deprecated="Write `settings.model` instead of a top-level `model`.",
    )
    session_properties: BetaSessionPropertiesSpec | None = spec_field(
        description="The session configuration at node level, as the seed takes it (or under "
        "`settings`; not both).",
        mutability=LIVE,
    )
    start_audio_paused: bool = spec_field(
        False, description="Start with audio input paused.", mutability=NEXT
    )
    send_transcription_frames: bool = spec_field(
        True,
        description="Emit transcript frames of the user's speech downstream.",
        mutability=NEXT,
    )
    settings: RealtimeBetaSettingsSpec = spec_field(
        default_factory=RealtimeBetaSettingsSpec,
        description="Runtime settings: hot-reloadable.",
        mutability=LIVE,
    )

    @model_validator(mode="after")
    def _no_duplicate_settings(self) -> RealtimeBetaNodeSpec:
        check_given_once({"model": self.model, "session_properties": self.session_properties},
                         self.settings, "at node level or under `settings`, not both")
        return self

    def effective_settings(self) -> RealtimeBetaSettingsSpec:
        data = self.settings.model_dump(exclude_unset=True)
        if self.model is not None:
            data["model"] = self.model
        if self.session_properties is not None:
            data["session_properties"] = self.session_properties.model_dump(exclude_unset=True)
        return RealtimeBetaSettingsSpec.model_validate(data)
