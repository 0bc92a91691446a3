"""A simulated Twilio media stream against `specs/phone-agent.yaml` on the emulator: μ-law in,
μ-law out, and `clear` when the caller barges in. A call the bot cannot take (its model cannot
be reached, or refuses the key) hears a spoken line before the stream closes; a normal call
never does."""

from __future__ import annotations

import asyncio
import base64
import shutil
import subprocess
from pathlib import Path

import aiohttp
import numpy as np
import pytest

from flowspec.audio import PCMU, AudioFormat, convert, read_wav, ulaw_decode, write_wav
from flowspec.server.offline import offline_graphs
from flowspec.spec.compile import compile_file, compile_text
from flowspec.transports.unavailable import MARK, builtin_line

from .conftest import running
from .test_model_failure import refusing  # noqa: F401  (a fixture)

ROOT = Path(__file__).resolve().parents[2]


def spoken_ulaw(directory: Path, text: str) -> bytes:
    espeak = shutil.which("espeak-ng")
    if espeak is None:
        pytest.fail("espeak-ng is not installed: `apt-get install -y espeak-ng` (.ci/run does).")
    raw = directory / "raw.wav"
    subprocess.run([espeak, "-w", str(raw), text], check=True)
    fmt, data = read_wav(raw)
    return convert(data, AudioFormat("pcm16", fmt.sample_rate, fmt.channels), PCMU)


def media(payload: bytes) -> dict[str, object]:
    return {"event": "media", "streamSid": "MZ1",
            "media": {"track": "inbound", "payload": base64.b64encode(payload).decode()}}


async def send_audio(ws: aiohttp.ClientWebSocketResponse, audio: bytes) -> None:
    for offset in range(0, len(audio), 160):  # 20 ms chunks, as Twilio sends them
        await ws.send_json(media(audio[offset:offset + 160]))


async def test_phone_call_mulaw_both_ways_and_clear_on_barge_in(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # the spec's transcript log is relative
    speech = spoken_ulaw(tmp_path, "Hello, what is the weather in Paris?")
    silence = b"\xff" * 8000  # one second of μ-law silence
    graph = compile_file(ROOT / "specs" / "phone-agent.yaml", env={}).raise_for_errors()
    async with offline_graphs([graph], {}) as offline, \
            running(offline.graphs) as (_server, host), aiohttp.ClientSession() as http:
        async with http.ws_connect(f"ws://{host}/twilio/stream") as ws:
            await ws.send_json({"event": "connected", "protocol": "Call", "version": "1.0.0"})
            await ws.send_json({"event": "start", "streamSid": "MZ1", "start": {
                "streamSid": "MZ1", "callSid": "CA1", "customParameters": {},
                "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000,
                                "channels": 1}}})
            await send_audio(ws, silence + speech + silence)
            received = 0
            events: list[str] = []
            async with asyncio.timeout(60):
                while "clear" not in events:
                    message = await ws.receive_json()
                    events.append(message["event"])
                    if message["event"] == "media":
                        payload = base64.b64decode(message["media"]["payload"])
                        received += len(payload)
                        if received >= 4000 and "barged" not in events:
                            events.append("barged")
                            await send_audio(ws, speech + silence)
            await ws.send_json({"event": "stop", "streamSid": "MZ1", "stop": {}})
    assert received >= 4000  # μ-law 8 kHz: at least half a second of the bot's reply
    assert events.index("barged") < events.index("clear")
    assert "mark" in events


START = {"event": "start", "streamSid": "MZ1", "start": {
    "streamSid": "MZ1", "callSid": "CA1", "customParameters": {},
    "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1}}}


def phone_spec(model: str, transport: str = "") -> str:
    return f"""\
flowspec: 1
name: phone
nodes:
  phone:
    type: transport.twilio
{transport}  llm:
{model}
edges: [phone -> llm -> phone]
"""


async def call(host: str, *, echo_marks: bool, hang_up_after: float | None = None
               ) -> tuple[list[dict[str, object]], bytes]:
    """Dial in as Twilio does; returns every message the server sent until it closed the
    stream, and the audio of the media messages among them. Marks are echoed (as Twilio does
    once the audio before them has played) when `echo_marks`."""
    messages: list[dict[str, object]] = []
    async with aiohttp.ClientSession() as http, http.ws_connect(
            f"ws://{host}/twilio/stream") as ws, asyncio.timeout(30):
        await ws.send_json({"event": "connected", "protocol": "Call", "version": "1.0.0"})
        await ws.send_json(START)
        if hang_up_after is not None:
            await asyncio.sleep(hang_up_after)
            await ws.send_json({"event": "stop", "streamSid": "MZ1", "stop": {}})
        async for message in ws:
            messages.append(message.json())
            if echo_marks and messages[-1]["event"] == "mark":
                await ws.send_json(messages[-1])
        assert ws.close_code is not None
    audio = b"".join(base64.b64decode(m["media"]["payload"])  # type: ignore[index]
                     for m in messages if m["event"] == "media")
    return messages, audio


def loudness(ulaw: bytes) -> float:
    samples = np.frombuffer(ulaw_decode(ulaw), np.int16).astype(np.float64)
    return float(np.sqrt(np.mean(samples ** 2))) if len(samples) else 0.0


async def test_a_call_the_bot_cannot_start_hears_why_before_the_line_closes() -> None:
    # The Responses model's socket cannot be opened (nothing listens on port 1): the session
    # never starts, and Twilio's stream has no text channel to say so.
    text = (ROOT / "specs" / "phone-responses.yaml").read_text()
    for kind in ("transcribe", "responses", "speech"):
        marker = f"    type: openai.{kind}\n"
        assert marker in text
        text = text.replace(marker, f"{marker}    api_key: sk-test\n", 1)
    marker = "    type: openai.responses\n"
    graph = compile_text(text.replace(marker, f"{marker}    ws_url: ws://127.0.0.1:1/v1/x\n"),
                         "phone.yaml", env={}).raise_for_errors()
    async with running([graph]) as (_server, host):
        messages, audio = await call(host, echo_marks=True)
    assert audio == builtin_line() and loudness(audio) > 1000  # the whole line, spoken
    assert [m["event"] for m in messages] == ["media"] * (len(messages) - 1) + ["mark"]
    assert messages[-1] == {"event": "mark", "streamSid": "MZ1", "mark": {"name": MARK}}


async def test_a_normal_call_never_hears_the_line(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # the spec's transcript log is relative
    graph = compile_file(ROOT / "specs" / "phone-agent.yaml", env={}).raise_for_errors()
    async with offline_graphs([graph], {}) as offline, running(offline.graphs) as (_, host):
        messages, audio = await call(host, echo_marks=True, hang_up_after=1.5)
    assert loudness(audio) > 1000  # the opening was spoken
    marks = [m["mark"] for m in messages if m["event"] == "mark"]
    assert marks and {"name": MARK} not in marks


async def test_a_refused_key_is_told_to_the_caller_in_the_specs_own_words(
        refusing: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    monkeypatch.chdir(tmp_path)  # `unavailable_audio` is relative to the working directory
    tone = (np.sin(np.arange(12000) * 2 * np.pi * 440 / 8000) * 8000).astype("<i2")
    write_wav(tmp_path / "sorry.wav", AudioFormat("pcm16", 8000), tone.tobytes())
    graph = compile_text(phone_spec(
        f"    type: openai.realtime\n    api_key: sk-bad\n"
        f"    base_url: ws://{refusing}/v1/realtime",
        "    unavailable_audio: sorry.wav\n"), "p.yaml", env={}).raise_for_errors()
    async with running([graph]) as (_server, host):
        messages, audio = await call(host, echo_marks=True)
    assert len(audio) == 12000 and loudness(audio) > 1000  # the file's 1.5 s, as μ-law
    assert messages[-1] == {"event": "mark", "streamSid": "MZ1", "mark": {"name": MARK}}
