"""The `text.redact` node: digits out of text and transcripts, everything else passed through."""

from __future__ import annotations

import dataclasses
import re

from flowspec.frames import Frame, TextFrame, TranscriptFrame
from flowspec.runtime.node import Context
from flowspec_redact.spec import RedactSpec

NUMBER = re.compile(r"\d(?:[ .-]?\d)*")
"""A number: digits, with single spaces, dashes or dots between them (4111 1111 1111 1111)."""
OPEN_NUMBER = re.compile(r"\d(?:[ .-]?\d)*[ .-]?$")
"""A number at the end of a text, which the next streamed delta may continue."""


def redact(text: str, mask: str = "#", keep_last: int = 0) -> str:
    """`text` with the digits of every number masked but the last `keep_last` of each."""

    def masked(match: re.Match[str]) -> str:
        number = match.group()
        hidden = sum(c.isdigit() for c in number) - keep_last
        out: list[str] = []
        for char in number:
            if char.isdigit() and hidden > 0:
                out.append(mask)
                hidden -= 1
            else:
                out.append(char)
        return "".join(out)

    return NUMBER.sub(masked, text)


class RedactNode:
    """Masks each text and transcript frame. A model's reply streams as text deltas, and a
    number may be split across two of them; with `keep_last`, which digits stay visible depends
    on the whole number, so a number ending a delta is held back until the next delta, or any
    other frame, shows where it ends."""

    def __init__(self, ctx: Context) -> None:
        spec = ctx.spec
        if not isinstance(spec, RedactSpec):
            raise TypeError(f"text.redact got a {type(spec).__name__}, not a RedactSpec.")
        self.ctx = ctx
        self.mask = spec.mask
        self.keep_last = spec.keep_last
        self._held: TextFrame | None = None

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    async def handle(self, frame: Frame, port: str) -> None:
        if isinstance(frame, TextFrame) and frame.role == "assistant" and self.keep_last:
            await self._delta(frame)
            return
        await self._release()
        if isinstance(frame, TextFrame | TranscriptFrame):
            frame = dataclasses.replace(frame, text=self._redact(frame.text))
        await self.ctx.emit(frame)

    async def _delta(self, frame: TextFrame) -> None:
        held, self._held = self._held, None
        if held is not None and held.item_id != frame.item_id:
            await self.ctx.emit(dataclasses.replace(held, text=self._redact(held.text)))
        elif held is not None:
            frame = dataclasses.replace(frame, text=held.text + frame.text)
        open_number = OPEN_NUMBER.search(frame.text)
        if open_number is not None:
            self._held = dataclasses.replace(frame, text=frame.text[open_number.start():])
            frame = dataclasses.replace(frame, text=frame.text[:open_number.start()])
        if frame.text:
            await self.ctx.emit(dataclasses.replace(frame, text=self._redact(frame.text)))

    async def _release(self) -> None:
        held, self._held = self._held, None
        if held is not None:
            await self.ctx.emit(dataclasses.replace(held, text=self._redact(held.text)))

    def _redact(self, text: str) -> str:
        return redact(text, self.mask, self.keep_last)
