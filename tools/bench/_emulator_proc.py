"""The emulator in its own process, for benchmarks that must keep its CPU out of the server's.

    python tools/bench/_emulator_proc.py [--pace 1] [--chunk-ms 20] [--say-words 400] [--stamp]
                                         [--stamp-reads] [--script FILE]

Prints `PORT <n>` once it listens. Every reply says the same long text (`--say-words` words), so a
session that asks once keeps receiving real-time audio for minutes (the speech is synthesised
once, at start-up, and reused). No message is kept (`keep_records` is off): what the benchmarks
need is counted per connection as it passes.

`--stamp` writes a stamp (`_stamp.py`) over the last bytes of every audio delta, just before the
delta is written to the socket: a marker, the connection's number and the send time
(`time.perf_counter_ns()`). `perf_counter_ns` is CLOCK_MONOTONIC on Linux, one
clock for every process on the machine, so a client in another process that finds the stamp in
the audio it receives knows how long that delta took to reach it, through whatever server relayed
it. The speech never reaches full scale, so the marker (full-scale samples) does not occur in it.

`--stamp-reads` stamps each `session.update` when its bytes come off the socket (`arrivals`),
before this process answers the updates of other connections that came with it.

`--script FILE` gives the model's side as the emulator's script rules instead (tool calls, say).

Each line on stdin is a command; the answer is one JSON line on stdout:
  `stats`         per connection: audio bytes appended by the client, audio deltas sent
  `window-start`  reset the window counters; answers the emulator's clock (ns)
  `window-end`    per connection, since `window-start`: bytes appended, the stamps sent (time,
                  audio bytes of the delta), when each `speech_started` was sent (ns)
  `ready`         how many open connections have been sent `session.updated`
  `arrivals`      the times (ns) `session.update` messages arrived since the last `arrivals`
  `forget`        drop the counts of closed connections
  `quit`          stop
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import functools
import json
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from _stamp import STAMP_BYTES, pack
from aiohttp import web

from flowspec.emulator import Emulator, load_script, parse_script, voice
from flowspec.emulator.records import ConnectionRecord
from flowspec.emulator.wire import JSONObject

WORDS = "the quick brown fox jumps over the lazy dog while the band plays on".split()
_PLACEHOLDER = "!" * (STAMP_BYTES * 4 // 3)  # not base64, never escaped by JSON


def long_text(words: int) -> str:
    return " ".join(WORDS[i % len(WORDS)] for i in range(words)) + "."


def appended_bytes(text: str) -> int:
    """The audio bytes an `input_audio_buffer.append` carries, read off its base64 length
    without parsing the message again (the session parses it)."""
    at = text.find('"audio"')
    if at < 0:
        return 0
    start = text.find('"', text.find(":", at + 7)) + 1
    end = text.find('"', start)
    if start <= 0 or end < 0:
        return 0
    size = end - start
    padding = (text[end - 1] == "=") + (text[end - 2] == "=") if size >= 2 else 0
    return size // 4 * 3 - padding


@dataclass(slots=True)
class Counts:
    """What one connection did, as a benchmark needs it."""

    number: int
    appended: int = 0
    deltas: int = 0
    updated: bool = False
    window_appended: int = 0
    window_stamps: list[tuple[int, int]] = field(default_factory=list)
    window_speech: list[int] = field(default_factory=list)
    closed: bool = False
    read_ns: int = 0  # when bytes last came off this connection's socket


class _Stamping(asyncio.Protocol):
    """Stands between a connection's transport and aiohttp's protocol, noting when bytes come
    off the socket: the moment a message reached this provider, before this process spends
    any time on the messages of other connections that came with it."""

    def __init__(self, inner: asyncio.BaseProtocol, counts: Counts) -> None:
        self._inner = inner
        self._counts = counts

    def data_received(self, data: bytes) -> None:
        self._counts.read_ns = time.perf_counter_ns()
        self._inner.data_received(data)  # type: ignore[attr-defined]

    def eof_received(self) -> bool | None:
        return self._inner.eof_received()  # type: ignore[attr-defined,no-any-return]

    def connection_lost(self, exc: Exception | None) -> None:
        self._inner.connection_lost(exc)

    def pause_writing(self) -> None:
        self._inner.pause_writing()

    def resume_writing(self) -> None:
        self._inner.resume_writing()


class BenchEmulator(Emulator):
    """The emulator with per-connection counts and, optionally, stamped audio deltas."""

    stamp = False
    read_stamps = False  # stamp session.update arrivals at the socket (`_Stamping`)
    window = False
    counts: dict[int, Counts]
    arrivals: list[int]

    def _counts(self, record: ConnectionRecord) -> Counts:
        counts = self.counts.get(record.id)
        if counts is None:
            counts = self.counts[record.id] = Counts(record.id)
        return counts

    def _sender(self, ws: web.WebSocketResponse,
                record: ConnectionRecord) -> Callable[[JSONObject], Awaitable[None]]:
        counts = self._counts(record)
        number = counts.number

        async def send(event: JSONObject) -> None:
            if ws.closed:
                raise ConnectionResetError("the client went away")
            kind = event.get("type")
            if kind == "response.output_audio.delta":
                counts.deltas += 1
                if self.stamp:
                    event["delta"] = event["delta"][: -len(_PLACEHOLDER)] + _PLACEHOLDER
                    text = json.dumps(event, separators=(",", ":"))
                    sent = time.perf_counter_ns()
                    stamp = base64.b64encode(pack(number, sent)).decode()
                    if self.window:
                        counts.window_stamps.append((sent, len(event["delta"]) // 4 * 3))
                    await ws.send_str(text.replace(_PLACEHOLDER, stamp, 1))
                    return
            elif kind == "input_audio_buffer.speech_started" and self.window:
                counts.window_speech.append(time.perf_counter_ns())
            elif kind == "session.updated":
                counts.updated = True
            await ws.send_str(json.dumps(event, separators=(",", ":")))

        return send

    async def _accept(self, request: web.Request,
                      record: ConnectionRecord) -> web.WebSocketResponse:
        ws = await super()._accept(request, record)
        transport = request.transport
        if self.read_stamps and transport is not None:
            transport.set_protocol(_Stamping(transport.get_protocol(), self._counts(record)))
        return ws

    async def _pump(self, ws: web.WebSocketResponse, record: ConnectionRecord,
                    handle: Callable[[str], Awaitable[None]]) -> None:
        counts = self._counts(record)

        async def counted(text: str) -> None:
            if '"input_audio_buffer.append"' in text:
                size = appended_bytes(text)
                counts.appended += size
                if self.window:
                    counts.window_appended += size
            elif '"session.update"' in text:
                # Stamped when its bytes came off the socket: updates for many connections
                # arrive together, and one process standing in for a hundred providers must
                # not add the queue of answering the others first.
                self.arrivals.append(counts.read_ns or time.perf_counter_ns())
            await handle(text)

        try:
            await super()._pump(ws, record, counted)
        finally:
            counts.closed = True

    def command(self, name: str) -> Any:
        live = [c for c in self.counts.values() if not c.closed]
        if name == "stats":
            return {"connections": [{"number": c.number, "appended_bytes": c.appended,
                                     "deltas": c.deltas, "closed": c.closed}
                                    for c in self.counts.values()]}
        if name == "window-start":
            for c in self.counts.values():
                c.window_appended = 0
                c.window_stamps = []
                c.window_speech = []
            self.window = True
            return {"clock_ns": time.perf_counter_ns()}
        if name == "window-end":
            self.window = False
            return {"clock_ns": time.perf_counter_ns(), "connections": [
                {"number": c.number, "appended_bytes": c.window_appended,
                 "stamps": c.window_stamps, "speech_started": c.window_speech}
                for c in self.counts.values() if c.window_stamps or c.window_appended]}
        if name == "ready":
            return {"ready": sum(c.updated for c in live), "open": len(live)}
        if name == "arrivals":
            out, self.arrivals = self.arrivals, []
            return {"arrivals_ns": out}
        if name == "forget":
            # Connections that closed are no longer needed: keep memory flat over a long run.
            self.counts = {k: c for k, c in self.counts.items() if not c.closed}
            return {"kept": len(self.counts)}
        return {"error": f"unknown command {name!r}"}


async def main(pace: float, chunk_ms: int, say_words: int, stamp: bool, read_stamps: bool,
               script_file: str | None = None) -> None:
    # Every reply says the same text: synthesise it once, not once per session, so that the
    # emulator's CPU goes to the wire protocol the benchmark is about.
    voice.synthesize = functools.lru_cache(maxsize=4)(voice.synthesize)
    voice.synthesize(long_text(say_words), 24000)
    script = parse_script(json.dumps({"rules": [{"say": long_text(say_words)}]})) \
        if script_file is None else load_script(script_file)
    BenchEmulator.stamp = stamp
    BenchEmulator.read_stamps = read_stamps
    async with BenchEmulator.start(pace=pace, chunk_ms=chunk_ms, script=script) as emulator:
        assert isinstance(emulator, BenchEmulator)
        emulator.counts = {}
        emulator.arrivals = []
        print(f"PORT {emulator.port}", flush=True)
        loop = asyncio.get_running_loop()
        while True:
            line = await loop.run_in_executor(None, sys.stdin.readline)
            command = line.strip()
            if command in ("quit", ""):
                return
            print(json.dumps(emulator.command(command)), flush=True)


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--pace", type=float, default=1.0)
    ap.add_argument("--chunk-ms", type=int, default=20)
    ap.add_argument("--say-words", type=int, default=400)
    ap.add_argument("--stamp", action="store_true")
    ap.add_argument("--stamp-reads", action="store_true",
                    help="stamp each session.update when its bytes come off the socket")
    ap.add_argument("--script")
    a = ap.parse_args()
    asyncio.run(main(a.pace, a.chunk_ms, a.say_words, a.stamp, a.stamp_reads, a.script))
