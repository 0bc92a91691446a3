"""A simulated Twilio media stream against `specs/phone-agent.yaml` on the emulator: μ-law in,
μ-law out, and `clear` when the caller barges in."""

from __future__ import annotations

import asyncio
import base64
import shutil
import subprocess
from pathlib import Path

import aiohttp
import pytest

from flowspec.audio import PCMU, AudioFormat, convert, read_wav
from flowspec.server.offline import offline_graphs
from flowspec.spec.compile import compile_file

from .conftest import running

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
