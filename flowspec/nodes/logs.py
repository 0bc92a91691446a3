"""`log.transcript`: a conversation's user and assistant turns as JSON Lines, a file per session.

One line per turn: `{"time", "session_id", "role", "text", "item_id", "source"}` where `source` is
`transcript` (speech) or `text` (typed or generated text); `"interrupted": true` marks an assistant
turn cut short by the user, and `"final": false` an interim transcript (with `include_interim`).
Streamed assistant text arrives in deltas: they are joined into one line per item, written when
the response ends, the user speaks, or the session stops.
"""

from __future__ import annotations

import datetime
import json
from typing import IO, Any

from flowspec.frames import (
    Frame,
    InterruptFrame,
    ResponseEndedFrame,
    TextFrame,
    TranscriptFrame,
)
from flowspec.nodes.audio_nodes import expand_path
from flowspec.runtime.node import Context
from flowspec.spec.models.audio import TranscriptLogSpec


class TranscriptLogNode:
    def __init__(self, ctx: Context) -> None:
        spec = ctx.spec
        if not isinstance(spec, TranscriptLogSpec):
            raise TypeError(f"log.transcript got a {type(spec).__name__}, not a "
                            "TranscriptLogSpec.")
        self.ctx = ctx
        self.path = expand_path(spec.path, ctx.session_id)
        self.include_interim = spec.include_interim
        self._file: IO[str] | None = None
        self._pending: dict[str | None, list[str]] = {}  # assistant text deltas by item

    async def start(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = self.path.open("a", encoding="utf-8")

    async def stop(self) -> None:
        self._flush_pending()
        if self._file is not None:
            self._file.close()
            self._file = None

    async def handle(self, frame: Frame, port: str) -> None:
        match frame:
            case TranscriptFrame(final=False) if not self.include_interim:
                return
            case TranscriptFrame():
                if frame.role == "user":
                    self._flush_pending()
                line: dict[str, Any] = {"role": frame.role, "text": frame.text,
                                        "item_id": frame.item_id, "source": "transcript"}
                if not frame.final:
                    line["final"] = False
                self._write(line)
            case TextFrame(role="user"):
                self._flush_pending()
                self._write({"role": "user", "text": frame.text, "item_id": frame.item_id,
                             "source": "text"})
            case TextFrame():
                self._pending.setdefault(frame.item_id, []).append(frame.text)
            case ResponseEndedFrame():
                self._flush_pending()
            case InterruptFrame():
                self._flush_pending(interrupted=True)

    def _flush_pending(self, *, interrupted: bool = False) -> None:
        pending, self._pending = self._pending, {}
        for item_id, parts in pending.items():
            line: dict[str, Any] = {"role": "assistant", "text": "".join(parts),
                                    "item_id": item_id, "source": "text"}
            if interrupted:
                line["interrupted"] = True
            self._write(line)

    def _write(self, line: dict[str, Any]) -> None:
        if self._file is None:
            return
        stamped = {"time": datetime.datetime.now(datetime.UTC).isoformat(timespec="milliseconds"),
                   "session_id": self.ctx.session_id, **line}
        self._file.write(json.dumps(stamped, ensure_ascii=False) + "\n")
        self._file.flush()
