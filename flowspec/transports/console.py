"""`transport.console`: a conversation on stdin/stdout, for `flowspec chat`.

Each line typed is a user message; the bot's text streams in as it arrives, one reply per line,
prefixed with the bot's label. `/quit` or end of input (Ctrl-D) ends the session. Where the input
comes from and the output goes is a seam (`ConsoleIO`): `flowspec chat` reads the process's
stdin, tests feed lines in memory.
"""

from __future__ import annotations

import asyncio
import sys
from typing import Protocol, TextIO

from flowspec.frames import (
    EndFrame,
    ErrorFrame,
    Frame,
    ResponseEndedFrame,
    TextFrame,
    TranscriptFrame,
)
from flowspec.runtime.node import Context

QUIT = frozenset({"/quit", "/exit"})
REPLY_WAIT_S = 60.0  # at end of input, how long the last reply may take to arrive


class LineReader(Protocol):
    async def readline(self) -> bytes: ...


class ConsoleIO:
    """Where a console transport reads lines and writes text."""

    def __init__(self, reader: LineReader, writer: TextIO) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def stdio(cls) -> ConsoleIO:
        """The process's stdin (read without blocking the event loop) and stdout."""
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader()
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
        return cls(reader, sys.stdout)


class ConsoleTransport:
    boundary = True

    def __init__(self, ctx: Context, io: ConsoleIO | None = None) -> None:
        self.ctx = ctx
        self.io = io
        spec = ctx.spec
        self.prompt = str(getattr(spec, "prompt", "> "))
        self.bot_label = str(getattr(spec, "bot_label", "bot"))
        self._replying = False  # a reply line is open (its text is still streaming)
        self._idle = asyncio.Event()  # no reply pending: every message sent was answered
        self._idle.set()
        self._line_open = False  # the last thing written did not end its line
        self.answers = 0  # replies the bot began
        self.errors = 0  # failures shown instead of a reply

    async def start(self) -> None:
        if self.io is not None:
            self.ctx.spawn(self._read(), name=f"flowspec:{self.ctx.node_id}:stdin",
                           essential=True)

    async def stop(self) -> None:
        if self.io is not None:
            self._end_reply()

    async def handle(self, frame: Frame, port: str) -> None:
        if self.io is None:
            return
        match frame:
            case TextFrame(role="assistant"):
                if not self._replying:
                    self._write(f"{self.bot_label}: ")
                    self._replying = True
                    self.answers += 1
                self._write(frame.text)
            case TranscriptFrame(role="assistant", final=True) if not self._replying:
                self._write(f"{self.bot_label}: {frame.text}")
                self._replying = True
                self.answers += 1
            case ResponseEndedFrame():
                if self._replying:  # a response with no text (a tool call) is not the answer
                    self._idle.set()
                    self._end_reply()
                    self._write(self.prompt)
            case ErrorFrame():
                self.errors += 1
                self._idle.set()
                self._end_reply()
                self._write(f"[error] {frame.node_id}: {frame.message}\n{self.prompt}")

    def _end_reply(self) -> None:
        if self._replying:
            self._replying = False
            self._write("\n")

    def _write(self, text: str) -> None:
        assert self.io is not None
        if text:
            self._line_open = not text.endswith("\n")
        self.io.writer.write(text)
        self.io.writer.flush()

    async def _read(self) -> None:
        assert self.io is not None
        self._write(self.prompt)
        reason = "end of input"
        while line_bytes := await self.io.reader.readline():
            line = line_bytes.decode("utf-8", errors="replace").strip()
            if line in QUIT:
                reason = "user quit"
                break
            if not line:
                self._write(self.prompt)
                continue
            self._idle.clear()
            await self.ctx.emit(TextFrame(text=line, role="user"))
        if reason == "end of input":
            # Piped input ends right after the last question: let its answer arrive first.
            try:
                async with asyncio.timeout(REPLY_WAIT_S):
                    await self._idle.wait()
            except TimeoutError:
                pass
        self._end_reply()
        if self._line_open:  # Ctrl-D at the prompt: leave the terminal on a line of its own
            self._write("\n")
        await self.ctx.emit(EndFrame(reason=reason))
