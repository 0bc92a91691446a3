"""Transport nodes: how users reach a bot (browser, phone, text chat, console, WAV files)."""

from __future__ import annotations

from typing import ClassVar, Literal

from flowspec.spec.models.base import Mutability, NodeSpec, StrictModel, spec_field

NEXT = Mutability.NEXT_SESSION
STRUCT = Mutability.STRUCTURAL

SAMPLE_RATES = [8000, 16000, 24000, 32000, 44100, 48000]
PATH_PATTERN = r"^/[A-Za-z0-9._~/-]*$"


class TransportAudioSpec(StrictModel):
    """Audio a transport exchanges with its client."""

    encoding: Literal["pcm16", "pcmu", "pcma"] = spec_field(
        "pcm16",
        description="Sample encoding: 16-bit little-endian PCM, or G.711 μ-law / A-law (8 kHz).",
        mutability=STRUCT,
        enum_descriptions=["Linear PCM, 16-bit little-endian.", "G.711 μ-law.", "G.711 A-law."],
    )
    sample_rate: Literal[8000, 16000, 24000, 32000, 44100, 48000] = spec_field(
        24000,
        description="Samples per second. Converters are inserted where a model needs another rate.",
        mutability=STRUCT,
    )
    channels: Literal[1, 2] = spec_field(
        1, description="Channel count. Models take mono.", mutability=STRUCT
    )


class TransportNodeSpec(NodeSpec):
    kind: ClassVar[str] = "transport"
    entry: ClassVar[bool] = True
    """Whether a connection on this transport starts a session."""


class WebsocketTransportSpec(TransportNodeSpec):
    """Browser and raw-PCM WebSocket clients; `flowspec serve` also hosts the page at `/`."""

    type: Literal["transport.websocket"] = spec_field(
        ..., description="Browser / raw PCM WebSocket transport.", mutability=STRUCT
    )
    path: str = spec_field(
        "/ws", description="WebSocket path served.", mutability=NEXT, pattern=PATH_PATTERN
    )
    audio: TransportAudioSpec = spec_field(
        default_factory=TransportAudioSpec,
        description="Audio exchanged as binary WebSocket frames.",
        mutability=STRUCT,
    )
    max_message_bytes: int = spec_field(
        1_048_576,
        description="Largest client message accepted; larger ones close the connection (1009).",
        mutability=NEXT,
        ge=1024,
    )
    page: bool = spec_field(
        True, description="Serve the browser page at `/`.", mutability=NEXT
    )


class TwilioTransportSpec(TransportNodeSpec):
    """Twilio Media Streams (μ-law 8 kHz) plus the TwiML webhook that points a call at it."""

    type: Literal["transport.twilio"] = spec_field(
        ..., description="Twilio Media Streams transport.", mutability=STRUCT
    )
    path: str = spec_field(
        "/twilio/stream",
        description="WebSocket path Twilio streams media to.",
        mutability=NEXT,
        pattern=PATH_PATTERN,
    )
    webhook_path: str = spec_field(
        "/twilio/voice",
        description="Path of the TwiML webhook (`POST`) that answers with `<Connect><Stream>`.",
        mutability=NEXT,
        pattern=PATH_PATTERN,
    )
    public_url: str | None = spec_field(
        description="Public base URL Twilio reaches (e.g. `wss://bot.example.com`). Unset: taken "
        "from the webhook request's Host.",
        mutability=NEXT,
        pattern=r"^(wss?|https?)://",
    )
    auth_token: str | None = spec_field(
        description="Twilio auth token: when set, webhook requests must carry a valid "
        "`X-Twilio-Signature`.",
        mutability=NEXT,
        secret=True,
        examples=["${TWILIO_AUTH_TOKEN}"],
    )
    clear_on_interruption: bool = spec_field(
        True, description="Send `clear` to Twilio when the user barges in.", mutability=NEXT
    )


class TextTransportSpec(TransportNodeSpec):
    """A JSON chat WebSocket for text bots."""

    type: Literal["transport.text"] = spec_field(
        ..., description="JSON text chat over WebSocket.", mutability=STRUCT
    )
    path: str = spec_field(
        "/chat", description="WebSocket path served.", mutability=NEXT, pattern=PATH_PATTERN
    )
    max_message_bytes: int = spec_field(
        65_536, description="Largest client message accepted.", mutability=NEXT, ge=256
    )


class ConsoleTransportSpec(TransportNodeSpec):
    """stdin/stdout, for `flowspec chat`."""

    type: Literal["transport.console"] = spec_field(
        ..., description="Console (stdin/stdout) transport.", mutability=STRUCT
    )
    prompt: str = spec_field("> ", description="Input prompt.", mutability=NEXT)
    user_label: str = spec_field("you", description="Label of user lines.", mutability=NEXT)
    bot_label: str = spec_field("bot", description="Label of bot lines.", mutability=NEXT)


class WavTransportSpec(TransportNodeSpec):
    """A WAV file in, a WAV file out: one batch session (`flowspec run`)."""

    type: Literal["transport.wav"] = spec_field(
        ..., description="WAV file transport for batch runs.", mutability=STRUCT
    )
    input: str | None = spec_field(
        description="WAV file to read (overridden by `flowspec run --in`).",
        mutability=NEXT,
        examples=["samples/question.wav"],
    )
    output: str | None = spec_field(
        description="WAV file to write (overridden by `flowspec run --out`).",
        mutability=NEXT,
        examples=["out/answer.wav"],
    )
    audio: TransportAudioSpec = spec_field(
        default_factory=TransportAudioSpec,
        description="Format of the files (PCM16 only in WAV files).",
        mutability=STRUCT,
    )
    realtime: bool = spec_field(
        False,
        description="Feed the input at real-time pace (as a live caller would) instead of as "
        "fast as the model accepts it.",
        mutability=NEXT,
    )
    trailing_silence_ms: int = spec_field(
        1500,
        description="Silence appended after the input so a VAD can detect the end of the turn.",
        mutability=NEXT,
        ge=0,
    )
