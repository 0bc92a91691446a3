"""What both sides of the cascade benchmark share: the turns, the stamps and how they are read.

flowspec's side (`cascade.py`) and Pipecat's (`_pipecat_cascade.py`, run in Pipecat's venv) stamp
the same moments at the same network seams and hand their stamps to `result`, so both results
have one shape and are computed one way. Imports nothing from flowspec or Pipecat.
"""

from __future__ import annotations

import json
import re
import statistics
import time
from dataclasses import dataclass, field
from typing import Any

from _targets import CASCADE_HOP_P99_MS

FIRST = "Sure thing."
REPLY = f"{FIRST} The forecast is mild and dry for the rest of the week."
SCRIPT = f"rules:\n  - say: {REPLY}\n"
TRANSCRIBE_MODEL = "gpt-4o-transcribe"
SYSTEM_INSTRUCTION = "Be brief."
RATE = 24000
FRAME_BYTES = 960  # 20 ms of 24 kHz PCM16, what a transport hands on
TURN_AUDIO = bytes(300 * 48)  # 300 ms of 24 kHz PCM16 (manual turns: silence will do)
TURN_TIMEOUT_S = 30.0
TARGET_MS = CASCADE_HOP_P99_MS.value
COMPLETED = "conversation.item.input_audio_transcription.completed"

# (key, what it spans): one table for both sides and the reports, so a hop has one name.
HOPS = (
    ("transcript_to_request", "final transcript → Responses request written"),
    ("transcript_to_request_handed", "final transcript → Responses request handed to the socket"),
    ("boundary_to_speech_request", "sentence boundary → speech request headers written"),
    ("boundary_to_speech_request_start",
     "sentence boundary → speech request handed to the HTTP client"),
    ("added", "time added per turn: transcript → request written plus boundary → speech "
              "headers written"),
    ("turn", "commit written → last speech audio at the caller"),
)
JUDGED = ("transcript_to_request", "boundary_to_speech_request")


def turn_chunks() -> list[bytes]:
    return [TURN_AUDIO[i:i + FRAME_BYTES] for i in range(0, len(TURN_AUDIO), FRAME_BYTES)]


def is_create(text: str) -> bool:
    return '"type":"response.create"' in text.replace(" ", "")


def is_commit(text: str) -> bool:
    return '"input_audio_buffer.commit"' in text.replace(" ", "")


@dataclass
class Stamps:
    """`time.perf_counter()` stamps, one list per seam; turns are told apart by order."""

    commits: list[float] = field(default_factory=list)
    finals: list[float] = field(default_factory=list)
    handed: list[float] = field(default_factory=list)
    creates: list[float] = field(default_factory=list)
    boundaries: list[float] = field(default_factory=list)
    speech_starts: list[float] = field(default_factory=list)
    speech_sent: list[float] = field(default_factory=list)
    last_audio: list[float] = field(default_factory=list)
    _text: str = ""
    _found: bool = True

    def created(self) -> None:
        """A `response.create` was written: look for the first sentence of its reply."""
        self.creates.append(time.perf_counter())
        self._text, self._found = "", False

    def received(self, text: str) -> None:
        """A message off the Responses socket, before the framework reads it."""
        if self._found or '"response.output_text.delta"' not in text:
            return
        self._text += json.loads(text)["delta"]
        # The boundary needs the whitespace after the sentence's end to have arrived.
        if re.match(re.escape(FIRST) + r"\s", self._text):
            self._found = True
            self.boundaries.append(time.perf_counter())


def firsts_after(starts: list[float], later: list[float]) -> list[float]:
    """For each stamp in `starts`, ms to the first stamp of `later` after it."""
    out: list[float] = []
    for start in starts:
        following = [t for t in later if t >= start]
        if following:
            out.append((following[0] - start) * 1000)
    return out


def summary(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
    return {"n": len(values), "p50_ms": statistics.median(values), "p99_ms": p99,
            "max_ms": ordered[-1]}


def result(side: str, stamps: Stamps, turns: int, warmup: int, cpu_s: float,
           **params: Any) -> dict[str, Any]:
    """Each hop's summary over the measured turns, or why it could not be measured."""
    skip = slice(warmup, None)
    spans = {
        "transcript_to_request": (stamps.finals[skip], stamps.creates,
                                  "final transcripts", "`response.create` writes"),
        "transcript_to_request_handed": (stamps.finals[skip], stamps.handed,
                                         "final transcripts", "`response.create` sends"),
        "boundary_to_speech_request": (stamps.boundaries[skip], stamps.speech_sent,
                                       "sentence boundaries", "speech request headers written"),
        "boundary_to_speech_request_start": (stamps.boundaries[skip], stamps.speech_starts,
                                             "sentence boundaries", "speech requests started"),
    }
    hops: dict[str, dict[str, float]] = {}
    missing: dict[str, str] = {}
    per_turn: dict[str, list[float]] = {}
    for key, (starts, ends, start_name, end_name) in spans.items():
        values = firsts_after(starts, ends)
        if len(values) == turns:
            hops[key] = summary(values)
            per_turn[key] = values
        else:
            missing[key] = (f"{len(values)} of {turns} measured turns paired: {len(starts)} "
                            f"{start_name}, {len(ends)} {end_name} in all")
    if all(key in per_turn for key in JUDGED):
        hops["added"] = summary([sum(v) for v in zip(*(per_turn[k] for k in JUDGED),
                                                     strict=True)])
    else:
        missing["added"] = "; ".join(f"{k}: {missing[k]}" for k in JUDGED if k in missing)
    ends = [(last - commit) * 1000 for commit, last in
            zip(stamps.commits[skip], stamps.last_audio[skip], strict=False)]
    if len(ends) == turns and len(stamps.commits) == len(stamps.last_audio):
        hops["turn"] = summary(ends)
    else:
        missing["turn"] = (f"{len(stamps.commits)} commits written and {len(stamps.last_audio)} "
                           f"replies spoken in {warmup + turns} turns")
    return {"side": side, "turns": turns, "warmup": warmup, "hops": hops,
            "not_measured": missing, "cpu_ms_per_turn": cpu_s * 1000 / turns,
            "target_p99_ms": TARGET_MS, "params": params}
