"""Transport nodes: how users reach a bot (browser, phone, text chat, console, WAV files)."""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

from pydantic import Field

from flowspec.spec.models.base import Mutability, NodeSpec, StrictModel, spec_field

LIVE = Mutability.LIVE
NEXT = Mutability.NEXT_SESSION
STRUCT = Mutability.STRUCTURAL

ORIGIN_PATTERN = r"^(\*|https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?|https?://\[[0-9A-Fa-f:.]+\](:[0-9]{1,5})?)$"

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


class ServedTransportSpec(TransportNodeSpec):
    """A transport `flowspec serve` accepts connections on."""

    max_sessions: int | None = spec_field(
        description="Most live sessions on this transport; a connection beyond it is refused "
        "(WebSocket close 1013, counted in `/metrics`). Unset: only the server's "
        "`--max-sessions` applies. Checked for each new connection.",
        mutability=LIVE,
        ge=1,
        le=100_000,
    )


class BrowserTransportSpec(ServedTransportSpec):
    """A transport a web page may open (the browser checks nothing on WebSockets itself)."""

    allowed_origins: list[Annotated[str, Field(pattern=ORIGIN_PATTERN)]] = spec_field(
        default_factory=list,
        description="Web pages (origins such as `https://app.example.com`) allowed to open this "
        "socket besides the server's own page; `*` allows any. A browser sends its page's "
        "`Origin`, and by default only the server's own origin is accepted, so no other web "
        "page can open a (paid) model session. Clients that send no `Origin` (not browsers) "
        "are accepted. Checked for each new connection.",
        mutability=LIVE,
        examples=[["https://app.example.com"]],
        max_length=100,
    )


class VideoSpec(StrictModel):
    """The page's camera, off unless enabled: JPEG frames for a model that takes images."""

    enabled: bool = spec_field(
        False, description="Ask the page's user for the camera and send its frames as JPEG "
        "images (a GA Realtime model shows them to itself as `input_image`).", mutability=NEXT
    )
    fps: float = spec_field(
        1.0, description="Frames a second the page sends (the Realtime node passes on at most "
        "one a second).", mutability=NEXT, ge=0.1, le=1.0
    )
    max_width: int = spec_field(
        640, description="Frames wider than this are scaled down to it, in pixels.",
        mutability=NEXT, ge=64, le=1920
    )


class WebsocketTransportSpec(BrowserTransportSpec):
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
    video: VideoSpec = spec_field(
        default_factory=VideoSpec,
        description="The page's camera (opt-in): `{enabled: true, fps: 1}` sends a JPEG frame "
        "a second as an `image` message.",
        mutability=STRUCT,
    )


DtmfKey = Literal["0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "*", "#"]


class TwilioTransportSpec(ServedTransportSpec):
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
        privileged=True,
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
    commit_key: DtmfKey | None = spec_field(
        description="A keypad key that ends the caller's turn: what they said is sent to the "
        "model, which answers (for a model with manual turns, `turn_detection: false`). The key "
        "is not passed on as a DTMF frame.",
        mutability=NEXT,
        examples=["#"],
    )
    interrupt_key: DtmfKey | None = spec_field(
        description="A keypad key that stops the bot's answer, as a barge-in does. The key is "
        "not passed on as a DTMF frame.",
        mutability=NEXT,
        examples=["*"],
    )
    unavailable_audio: str | None = spec_field(
        description="A WAV file (relative to the server's working directory) the caller hears "
        "when the bot cannot take the call: its model cannot be reached or refuses it, or the "
        "call fails. It plays before the stream closes, up to 30 s. Unset: a built-in line, "
        '"Sorry, the assistant cannot take your call right now. Please try again later."',
        mutability=NEXT,
        privileged=True,
        examples=["audio/unavailable.wav"],
    )


class TextTransportSpec(BrowserTransportSpec):
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
        privileged=True,
        examples=["samples/question.wav"],
    )
    output: str | None = spec_field(
        description="WAV file to write (overridden by `flowspec run --out`).",
        mutability=NEXT,
        privileged=True,
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
