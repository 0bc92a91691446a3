"""Session audio formats: bytes on the wire <-> PCM16 for the VAD and the voice."""

from __future__ import annotations

from flowspec.audio import alaw_decode, alaw_encode, ulaw_decode, ulaw_encode
from flowspec.emulator.session import AudioFormat


def sample_rate(fmt: AudioFormat) -> int:
    return 24000 if fmt == "pcm16" else 8000


def bytes_per_ms(fmt: AudioFormat) -> int:
    return 48 if fmt == "pcm16" else 8


def to_pcm16(fmt: AudioFormat, data: bytes) -> bytes:
    """Decode wire bytes to PCM16 at the format's own rate (24 kHz or 8 kHz)."""
    if fmt == "g711_ulaw":
        return ulaw_decode(data)
    if fmt == "g711_alaw":
        return alaw_decode(data)
    return data


def from_pcm16(fmt: AudioFormat, pcm16: bytes) -> bytes:
    """Encode PCM16 already at `sample_rate(fmt)` into wire bytes."""
    if fmt == "g711_ulaw":
        return ulaw_encode(pcm16)
    if fmt == "g711_alaw":
        return alaw_encode(pcm16)
    return pcm16
