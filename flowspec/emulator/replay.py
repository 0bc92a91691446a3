"""Playing a recorded call's model side (`flowspec record`, a scenario's `replay:`): the emulator
sends what the provider sent, in order, each message once the client has got as far as it had
when the provider sent it.

"As far" is two counts taken from the recording: the client messages sent before it that are
not audio appends, and the bytes of audio appended before it (a turn the provider's VAD ended
came after so much audio, however the client chunked it). So a replayed call answers the
same client in step, whatever its timing; the gaps between messages sent together are kept,
scaled by the emulator's pace. The i-th connection of an API replays the i-th connection of that
API in the recording (a reconnect starts the next one).
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flowspec.emulator.wire import JSONObject

APPENDS = frozenset({"input_audio_buffer.append"})


@dataclass(frozen=True, slots=True)
class Cue:
    """One provider message and how far the client had got when it was sent."""

    after_messages: int
    after_audio_bytes: int
    t: float
    event: JSONObject


@dataclass(slots=True)
class Replay:
    """The provider side of a recording, by API (`realtime`, `responses`), by connection."""

    connections: dict[str, list[list[Cue]]] = field(default_factory=dict)
    _used: dict[str, int] = field(default_factory=dict)

    @classmethod
    def load(cls, path: str | Path) -> Replay:
        from flowspec.scenario.record import read_recording

        replay = cls()
        progress: dict[tuple[str, str], list[int]] = {}  # (node, api): messages, audio bytes
        for line in read_recording(path):
            key = (str(line.get("node", "")), str(line.get("api", "realtime")))
            event: JSONObject = line["event"]
            kind = event.get("type")
            if line["dir"] == "in" and kind in ("session.created", "transcription_session."
                                                "created"):
                progress[key] = [0, 0]  # a new connection starts its counts again
                replay.connections.setdefault(key[1], []).append([])
            counts = progress.setdefault(key, [0, 0])
            if not replay.connections.get(key[1]):
                replay.connections.setdefault(key[1], []).append([])
            if line["dir"] == "out":
                if kind in APPENDS:
                    counts[1] += _audio_bytes(event)
                else:
                    counts[0] += 1
                continue
            replay.connections[key[1]][-1].append(
                Cue(counts[0], counts[1], float(line.get("t", 0.0)), event))
        return replay

    def next_connection(self, api: str) -> list[Cue]:
        """The cues of the next connection of `api` (nothing once they are used up)."""
        index = self._used.get(api, 0)
        self._used[api] = index + 1
        found = self.connections.get(api, [])
        return list(found[index]) if index < len(found) else []


def _audio_bytes(event: JSONObject) -> int:
    audio = event.get("audio")
    if not isinstance(audio, str):
        return 0
    try:
        return len(base64.b64decode(audio, validate=True))
    except ValueError:
        return 0


class ReplaySocket:
    """One replayed connection: `handle` takes the client's messages, `send` answers."""

    def __init__(self, cues: list[Cue], send: Callable[[JSONObject], Awaitable[None]], *,
                 pace: float) -> None:
        self._cues = cues
        self._send = send
        self._pace = pace
        self._messages = 0
        self._audio_bytes = 0
        self._last_t: float | None = None

    async def start(self) -> None:
        await self._release()

    async def handle(self, text: str) -> None:
        try:
            event: Any = json.loads(text)
        except ValueError:
            event = {}
        if isinstance(event, dict) and event.get("type") in APPENDS:
            self._audio_bytes += _audio_bytes(event)
        else:
            self._messages += 1
        await self._release()

    async def _release(self) -> None:
        while self._cues and self._cues[0].after_messages <= self._messages and \
                self._cues[0].after_audio_bytes <= self._audio_bytes:
            cue = self._cues.pop(0)
            if self._pace > 0 and self._last_t is not None:
                await asyncio.sleep(max(0.0, cue.t - self._last_t) * self._pace)
            self._last_t = cue.t
            await self._send(cue.event)
