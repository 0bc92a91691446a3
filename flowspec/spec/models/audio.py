"""Audio and logging utility nodes: `audio.convert`, `audio.record`, `log.transcript`."""

from __future__ import annotations

from typing import ClassVar, Literal

from flowspec.spec.models.base import Mutability, NodeSpec, spec_field
from flowspec.spec.models.transports import TransportAudioSpec

NEXT = Mutability.NEXT_SESSION
STRUCT = Mutability.STRUCTURAL


class AudioConvertSpec(NodeSpec):
    """Resamples and re-encodes audio (PCM16 ↔ G.711); other frames pass through unchanged.

    The compiler inserts these where an edge joins two audio formats; you may also write one.
    """

    type: Literal["audio.convert"] = spec_field(
        ..., description="Audio format converter.", mutability=STRUCT
    )
    kind: ClassVar[str] = "audio"
    input: TransportAudioSpec = spec_field(
        ...,
        description="Format of the audio arriving.", mutability=STRUCT
    )
    output: TransportAudioSpec = spec_field(
        ...,
        description="Format of the audio leaving.", mutability=STRUCT
    )


class AudioRecordSpec(NodeSpec):
    """Writes the conversation's audio to a WAV file per session (user left, bot right)."""

    type: Literal["audio.record"] = spec_field(
        ..., description="WAV recorder of the conversation.", mutability=STRUCT
    )
    kind: ClassVar[str] = "audio"
    path: str = spec_field(
        "recordings/{session_id}.wav",
        description="File to write; `{session_id}` and `{date}` are replaced per session.",
        mutability=NEXT,
        privileged=True,
    )
    sample_rate: Literal[8000, 16000, 24000, 48000] = spec_field(
        24000, description="Sample rate of the recording.", mutability=NEXT
    )
    channels: Literal[1, 2] = spec_field(
        2,
        description="2: user on the left, bot on the right; 1: both mixed.",
        mutability=NEXT,
    )


class TranscriptLogSpec(NodeSpec):
    """Appends user and assistant turns to a JSON Lines file."""

    type: Literal["log.transcript"] = spec_field(
        ..., description="JSON Lines transcript log.", mutability=STRUCT
    )
    kind: ClassVar[str] = "log"
    path: str = spec_field(
        "transcripts/{session_id}.jsonl",
        description="File to append to; `{session_id}` and `{date}` are replaced per session.",
        mutability=NEXT,
        privileged=True,
    )
    include_interim: bool = spec_field(
        False, description="Also log interim (partial) transcripts.", mutability=NEXT
    )
