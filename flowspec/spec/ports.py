"""Ports and caps: what frame kinds and audio formats each node type emits and accepts.

The compiler checks every edge against these: an edge that carries no common kind is an error, and
an audio format mismatch is either bridged by an inserted `audio.convert` node or reported. Each
node family declares its ports as a function of its spec (the built-in families' are here).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from flowspec.spec.models.audio import AudioConvertSpec, AudioRecordSpec, TranscriptLogSpec
from flowspec.spec.models.base import NodeSpec
from flowspec.spec.models.realtime import RealtimeNodeSpec
from flowspec.spec.models.realtime_beta import RealtimeBetaNodeSpec
from flowspec.spec.models.responses import ResponsesNodeSpec
from flowspec.spec.models.speech import SpeechNodeSpec, TranscribeNodeSpec
from flowspec.spec.models.transports import (
    ConsoleTransportSpec,
    TextTransportSpec,
    TransportAudioSpec,
    TwilioTransportSpec,
    WavTransportSpec,
    WebsocketTransportSpec,
)

Direction = Literal["in", "out"]
ALL_KINDS = frozenset({"audio", "text", "transcript", "image"})
CONVERTIBLE_ENCODINGS = frozenset({"pcm16", "pcmu", "pcma"})
CONVERTIBLE_RATES = frozenset({8000, 16000, 24000, 32000, 44100, 48000})


@dataclass(frozen=True, slots=True)
class AudioCaps:
    encoding: str
    sample_rate: int
    channels: int = 1

    def __str__(self) -> str:
        layout = "mono" if self.channels == 1 else f"{self.channels} channels"
        return f"{self.encoding} {self.sample_rate / 1000:g} kHz {layout}"

    @classmethod
    def of(cls, spec: TransportAudioSpec) -> AudioCaps:
        return cls(spec.encoding, spec.sample_rate, spec.channels)

    def as_spec(self) -> TransportAudioSpec:
        return TransportAudioSpec.model_validate(
            {"encoding": self.encoding, "sample_rate": self.sample_rate, "channels": self.channels}
        )


@dataclass(frozen=True, slots=True)
class PortSpec:
    name: str
    direction: Direction
    kinds: frozenset[str]
    audio: AudioCaps | None = None
    """Concrete audio format, or None when any format is accepted (or no audio flows)."""
    required: bool = False


PCM24 = AudioCaps("pcm16", 24000)
G711 = {"pcmu": AudioCaps("pcmu", 8000), "pcma": AudioCaps("pcma", 8000)}
GA_FORMATS = {"audio/pcm": PCM24, "audio/pcmu": G711["pcmu"], "audio/pcma": G711["pcma"]}
BETA_FORMATS = {"pcm16": PCM24, "g711_ulaw": G711["pcmu"], "g711_alaw": G711["pcma"]}


def _p(name: str, direction: Direction, kinds: set[str], audio: AudioCaps | None = None,
       required: bool = False) -> PortSpec:
    return PortSpec(name, direction, frozenset(kinds), audio, required)


def realtime_ports(spec: RealtimeNodeSpec) -> list[PortSpec]:
    props = spec.effective_settings().session_properties
    audio = props.audio
    fmt_in = audio.input.format if audio and audio.input else None
    fmt_out = audio.output.format if audio and audio.output else None
    caps_in = GA_FORMATS[fmt_in.type] if fmt_in else PCM24
    caps_out = GA_FORMATS[fmt_out.type] if fmt_out else PCM24
    text_only = props.output_modalities == ["text"]
    out_kinds = {"text", "transcript"} if text_only else {"audio", "text", "transcript"}
    return [
        _p("in", "in", {"audio", "text", "image"}, caps_in, required=True),
        _p("out", "out", out_kinds, None if text_only else caps_out),
    ]


def beta_ports(spec: RealtimeBetaNodeSpec) -> list[PortSpec]:
    props = spec.effective_settings().session_properties
    caps_in = BETA_FORMATS[props.input_audio_format or "pcm16"]
    caps_out = BETA_FORMATS[props.output_audio_format or "pcm16"]
    text_only = props.modalities is not None and "audio" not in props.modalities
    out_kinds = {"text", "transcript"} if text_only else {"audio", "text", "transcript"}
    return [
        _p("in", "in", {"audio", "text"}, caps_in, required=True),
        _p("out", "out", out_kinds, None if text_only else caps_out),
    ]


def responses_ports(spec: ResponsesNodeSpec) -> list[PortSpec]:
    return [_p("in", "in", {"text", "transcript"}, required=True), _p("out", "out", {"text"})]


def transcribe_ports(spec: TranscribeNodeSpec) -> list[PortSpec]:
    """Caller audio in (typed text and the transport's playback reports pass through to the
    model), user transcripts out."""
    return [_p("in", "in", {"audio", "text"}, PCM24, required=True),
            _p("out", "out", {"transcript", "text"})]


def speech_ports(spec: SpeechNodeSpec) -> list[PortSpec]:
    """The model's text in; audio out, with the text each piece of it says."""
    return [_p("in", "in", {"text"}, required=True), _p("out", "out", {"audio", "text"}, PCM24)]


def audio_transport_ports(spec: WebsocketTransportSpec | WavTransportSpec) -> list[PortSpec]:
    """A transport carrying audio in the format its spec gives, and text (browser, WAV)."""
    caps = AudioCaps.of(spec.audio)
    video = isinstance(spec, WebsocketTransportSpec) and spec.video.enabled
    return [_p("out", "out", {"audio", "text", "image"} if video else {"audio", "text"}, caps),
            _p("in", "in", {"audio", "text", "transcript"}, caps)]


def twilio_ports(spec: TwilioTransportSpec) -> list[PortSpec]:
    return [_p("out", "out", {"audio"}, G711["pcmu"]), _p("in", "in", {"audio"}, G711["pcmu"])]


def text_transport_ports(spec: TextTransportSpec | ConsoleTransportSpec) -> list[PortSpec]:
    return [_p("out", "out", {"text"}), _p("in", "in", {"text", "transcript"})]


def convert_ports(spec: AudioConvertSpec) -> list[PortSpec]:
    return [_p("in", "in", set(ALL_KINDS), AudioCaps.of(spec.input), required=True),
            _p("out", "out", set(ALL_KINDS), AudioCaps.of(spec.output))]


def record_ports(spec: AudioRecordSpec) -> list[PortSpec]:
    return [_p("user", "in", {"audio"}), _p("bot", "in", {"audio"})]


def transcript_log_ports(spec: TranscriptLogSpec) -> list[PortSpec]:
    return [_p("in", "in", {"transcript", "text"}, required=True)]


def ports_of(spec: NodeSpec) -> dict[str, PortSpec]:
    """The ports of a node, keyed by name, as its family declares them (tool nodes have none:
    models reach them by `tools:`). Raises FamilyError for a type no family declares."""
    from flowspec.families.registry import default_families

    return default_families().ports_of(spec)


def convertible(src: AudioCaps, dst: AudioCaps) -> str | None:
    """None when `audio.convert` can bridge src → dst; otherwise the reason it cannot."""
    if src.channels != dst.channels:
        return f"channel counts differ ({src.channels} → {dst.channels}); models take mono"
    for caps in (src, dst):
        if caps.encoding not in CONVERTIBLE_ENCODINGS:
            return f"encoding {caps.encoding!r} cannot be converted"
        if caps.sample_rate not in CONVERTIBLE_RATES:
            return f"sample rate {caps.sample_rate} cannot be converted"
        if caps.encoding in G711 and caps.sample_rate != 8000:
            return f"G.711 ({caps.encoding}) is 8 kHz only"
    return None
