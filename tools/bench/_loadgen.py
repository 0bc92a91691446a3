"""Browser-protocol clients for the realtime benchmarks, and the processes they talk to.

A client connects to a `transport.websocket` endpoint, asks for one (long) spoken reply with a
`text` message, then streams 20 ms PCM16 frames of silence on an absolute schedule while it
records the arrival time and size of every binary (audio) message it receives.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import aiohttp

HERE = Path(__file__).resolve().parent
RATE = 24000
BYTES_PER_MS = RATE * 2 // 1000
FRAME_MS = 20
SILENCE = b"\x00\x00" * (RATE * FRAME_MS // 1000)  # 960 bytes

SPEC = """\
flowspec: 1
name: bench-realtime
nodes:
  caller:
    type: transport.websocket
    audio: {{encoding: pcm16, sample_rate: 24000}}
  llm:
    type: openai.realtime
    base_url: {base_url}
    settings:
      model: gpt-realtime
      system_instruction: You are a helpful, concise assistant.
      session_properties:
        audio:
          input:
            turn_detection: {{type: server_vad, threshold: 0.5, prefix_padding_ms: 300,
                              silence_duration_ms: 500}}
          output: {{voice: marin}}
edges:
  - caller -> llm -> caller
"""


@dataclass(slots=True)
class Client:
    """What one client saw: (perf_counter_ns, bytes) per audio message, frames sent."""

    received: list[tuple[int, int]] = field(default_factory=list)
    sent: list[int] = field(default_factory=list)
    error: str | None = None


async def run_client(http: aiohttp.ClientSession, url: str, stop_at: float, client: Client,
                     phase_s: float = 0.0) -> None:
    try:
        async with http.ws_connect(url, max_msg_size=0) as ws:
            while True:
                msg = await ws.receive()
                if msg.type != aiohttp.WSMsgType.TEXT:
                    raise RuntimeError(f"no session.started: {msg.type}")
                if json.loads(msg.data).get("type") == "session.started":
                    break
            await ws.send_str(json.dumps({"type": "text", "text": "Tell me a long story."}))
            sender = asyncio.create_task(_send(ws, stop_at, client, phase_s))
            try:
                while True:
                    left = stop_at - time.perf_counter()
                    if left <= 0:
                        break
                    try:
                        msg = await asyncio.wait_for(ws.receive(), left)
                    except TimeoutError:
                        break
                    if msg.type == aiohttp.WSMsgType.BINARY:
                        client.received.append((time.perf_counter_ns(), len(msg.data)))
                    elif msg.type != aiohttp.WSMsgType.TEXT:
                        break
            finally:
                sender.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await sender
    except Exception as exc:  # noqa: BLE001 - reported, not fatal to the other clients
        client.error = f"{type(exc).__name__}: {exc}"


async def _send(ws: aiohttp.ClientWebSocketResponse, stop_at: float, client: Client,
                phase_s: float) -> None:
    t0 = time.perf_counter() + phase_s
    j = 0
    while True:
        due = t0 + j * FRAME_MS / 1000
        if due >= stop_at:
            return
        delay = due - time.perf_counter()
        await asyncio.sleep(max(0.0, delay))
        await ws.send_bytes(SILENCE)
        client.sent.append(time.perf_counter_ns())
        j += 1


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass(slots=True)
class EmulatorProcess:
    proc: subprocess.Popen[str]
    port: int

    @property
    def realtime_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/v1/realtime"

    def stats(self) -> dict[str, Any]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write("stats\n")
        self.proc.stdin.flush()
        return dict(json.loads(self.proc.stdout.readline()))


@contextlib.contextmanager
def emulator_process(chunk_ms: int = 20) -> Iterator[EmulatorProcess]:
    proc = subprocess.Popen([sys.executable, str(HERE / "_emulator_proc.py"), "--chunk-ms",
                             str(chunk_ms)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if not line.startswith("PORT "):
            raise RuntimeError(f"the emulator did not start: {line!r}")
        yield EmulatorProcess(proc, int(line.split()[1]))
    finally:
        _stop(proc, proc.stdin)


@contextlib.contextmanager
def spec_file(base_url: str) -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="flowspec-bench-") as tmp:
        path = Path(tmp) / "bench-realtime.yaml"
        path.write_text(SPEC.format(base_url=base_url))
        yield path


@contextlib.contextmanager
def server_process(spec: Path) -> Iterator[tuple[subprocess.Popen[str], int]]:
    """`flowspec serve SPEC` in its own process; yields it and its port once /healthz answers."""
    port = free_port()
    env = {**os.environ, "OPENAI_API_KEY": "bench"}
    # The admin API is off: idle either way, and on it leaves a token file per start.
    proc = subprocess.Popen([sys.executable, "-m", "flowspec.cli", "serve", str(spec), "--port",
                             str(port), "--log-format", "json", "--no-admin"], env=env, text=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                    break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("flowspec serve did not start") from None
                time.sleep(0.1)
        yield proc, port
    finally:
        _stop(proc, None)


def _stop(proc: subprocess.Popen[str], stdin: IO[str] | None) -> None:
    with contextlib.suppress(OSError, ValueError):
        if stdin is not None:
            stdin.write("quit\n")
            stdin.close()
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process (children excluded), from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def _one(url: str, seconds: float) -> dict[str, Any]:
    client = Client()
    async with aiohttp.ClientSession() as http:
        await run_client(http, url, time.perf_counter() + seconds, client)
    return {"received": len(client.received), "sent": len(client.sent), "error": client.error}


if __name__ == "__main__":
    # One client in its own process: `python _loadgen.py URL SECONDS`.
    print(json.dumps(asyncio.run(_one(sys.argv[1], float(sys.argv[2])))))


# -- speaking clients: the sessions benchmark -------------------------------------------------

UTTERANCE = "please tell me a story."
CYCLE_S = 6.0


def speech_cycle(cycle_s: float = CYCLE_S) -> list[bytes]:
    """One turn of a caller, in 20 ms frames: an utterance of speech-like audio (what server VAD
    hears as speech), then silence until `cycle_s`. Speaking again while the reply plays is the
    barge-in of the next cycle."""
    from flowspec.emulator import voice

    speech = voice.synthesize(UTTERANCE, RATE)
    size = len(SILENCE)
    frames = [speech[i:i + size].ljust(size, b"\x00") for i in range(0, len(speech), size)]
    total = int(cycle_s * 1000 / FRAME_MS)
    return frames + [SILENCE] * max(0, total - len(frames))


@dataclass(slots=True)
class Talker:
    """One caller: what it sent and what reached it.

    `stamps` holds (emulator connection, emulator send time, arrival here) for every stamped
    audio delta found in the binary messages received; all times are `perf_counter_ns`."""

    url: str
    offset: int = 0
    sent: list[int] = field(default_factory=list)
    stamps: list[tuple[int, int, int]] = field(default_factory=list)
    audio_bytes: int = 0
    text_messages: int = 0
    error: str | None = None


async def talk(http: aiohttp.ClientSession, talker: Talker, cycle: list[bytes], start_at: float,
               stop_at: float) -> None:
    """Connect, then send `cycle` (from `talker.offset`, round and round) on an absolute 20 ms
    schedule from `start_at` until `stop_at`, recording every stamp that arrives."""
    from _stamp import STAMP_BYTES, find

    try:
        async with http.ws_connect(talker.url, max_msg_size=0) as ws:
            async def send() -> None:
                j = 0
                while True:
                    due = start_at + j * FRAME_MS / 1000
                    if due >= stop_at:
                        return
                    delay = due - time.perf_counter()
                    if delay > 0:
                        await asyncio.sleep(delay)
                    await ws.send_bytes(cycle[(talker.offset + j) % len(cycle)])
                    talker.sent.append(time.perf_counter_ns())
                    j += 1

            sender = asyncio.create_task(send())
            keep = STAMP_BYTES - 1
            tail = b""
            try:
                while True:
                    left = stop_at - time.perf_counter()
                    if left <= 0:
                        break
                    try:
                        msg = await asyncio.wait_for(ws.receive(), left)
                    except TimeoutError:
                        break
                    now = time.perf_counter_ns()
                    if msg.type == aiohttp.WSMsgType.BINARY:
                        data = tail + msg.data
                        talker.audio_bytes += len(msg.data)
                        for connection, sent in find(data):
                            talker.stamps.append((connection, sent, now))
                        tail = data[-keep:]
                    elif msg.type == aiohttp.WSMsgType.TEXT:
                        talker.text_messages += 1
                    else:
                        break
            finally:
                sender.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await sender  # a sender that failed raises its error here
    except Exception as exc:  # noqa: BLE001 - reported per caller, not fatal to the others
        talker.error = f"{type(exc).__name__}: {exc}"
