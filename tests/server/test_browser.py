"""The browser page end to end, in headless Chromium with a fake microphone.

`flowspec serve specs/voice-assistant.yaml` runs as README says (no key: the emulator answers);
Chromium's fake capture device plays a WAV spoken by espeak-ng into the page's microphone. The
page must connect, the emulator must hear the speech, the reply audio must be played by the page,
and both transcripts must appear. A screenshot is left in build/test-artifacts/.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from flowspec.audio import AudioFormat, read_wav, write_wav

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "build" / "test-artifacts"


def need(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        pytest.fail(f"{tool} is not installed: `apt-get install -y chromium espeak-ng` "
                    "(.ci/run installs it).")
    return path


def spoken_wav(directory: Path, text: str) -> Path:
    raw, padded = directory / "raw.wav", directory / "speech.wav"
    subprocess.run([need("espeak-ng"), "-w", str(raw), text], check=True)
    fmt, data = read_wav(raw)
    # Silence before and after so a voice activity detector hears a clean turn; Chromium loops
    # the file, so the long tail keeps the user quiet while the reply plays.
    silence = bytes(fmt.bytes_per_second // 2 * 2 // fmt.frame_size * fmt.frame_size)
    write_wav(padded, AudioFormat("pcm16", fmt.sample_rate, fmt.channels),
              silence + data + silence * 16)
    return padded


async def serve(env: dict[str, str], spec: str = "specs/voice-assistant.yaml",
                *options: str) -> tuple[asyncio.subprocess.Process, int]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "flowspec.cli", "serve", spec, "--port", "0", *options,
        cwd=ROOT, env=env, stdout=asyncio.subprocess.PIPE)
    assert process.stdout is not None
    banner = ""
    async with asyncio.timeout(30):
        while (found := re.search(r"listening on http://127.0.0.1:(\d+)/", banner)) is None:
            line = await process.stdout.readline()
            if not line:
                pytest.fail(f"flowspec serve exited: {banner}")
            banner += line.decode()
    assert "emulator" in banner  # the offline default says so
    return process, int(found.group(1))


class DevTools:
    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.next_id = 0

    async def call(self, method: str, **params: Any) -> dict[str, Any]:
        self.next_id += 1
        await self.ws.send_json({"id": self.next_id, "method": method, "params": params})
        while True:
            message = await self.ws.receive_json()
            if message.get("id") == self.next_id:
                if "error" in message:
                    raise AssertionError(f"{method}: {message['error']}")
                result: dict[str, Any] = message["result"]
                return result

    async def evaluate(self, expression: str) -> Any:
        result = await self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        return result["result"].get("value")


async def chromium(url: str, wav: Path, profile: Path,
                   *extra: str) -> AsyncIterator[DevTools]:
    process = await asyncio.create_subprocess_exec(
        need("chromium"), "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        f"--user-data-dir={profile}", "--use-fake-ui-for-media-stream",
        "--use-fake-device-for-media-stream", f"--use-file-for-fake-audio-capture={wav}",
        "--autoplay-policy=no-user-gesture-required", "--remote-debugging-port=0", *extra, url,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
    try:
        port_file = profile / "DevToolsActivePort"
        for _ in range(300):
            if port_file.exists() and port_file.read_text().strip():
                break
            await asyncio.sleep(0.1)
        port = int(port_file.read_text().split()[0])
        async with aiohttp.ClientSession() as http:
            pages: list[dict[str, Any]] = []
            for _ in range(100):
                pages = [t for t in await (await http.get(f"http://127.0.0.1:{port}/json/list"))
                         .json() if t["type"] == "page"]
                if pages:
                    break
                await asyncio.sleep(0.1)
            async with http.ws_connect(pages[0]["webSocketDebuggerUrl"],
                                       max_msg_size=0) as ws:
                yield DevTools(ws)
    finally:
        process.terminate()
        await process.wait()


async def poll_page(devtools: DevTools, expression: str, done: Callable[[Any], bool], what: str,
                    *, timeout_s: float = 60, every_s: float = 0.2, as_json: bool = True) -> Any:
    """Evaluate `expression` in the page until `done` holds for its value (a string is read
    as JSON unless `as_json` is false), bounded, failing with the last value seen: the page
    has no event to wait on."""
    value: Any = None
    try:
        async with asyncio.timeout(timeout_s):
            while True:
                value = await devtools.evaluate(expression)
                if as_json and isinstance(value, str):
                    value = json.loads(value)
                if done(value):
                    return value
                await asyncio.sleep(every_s)
    except TimeoutError:
        pytest.fail(f"the page never showed {what}; last seen: {value!r}")


async def test_browser_voice_conversation_with_the_emulator(tmp_path: Path) -> None:
    wav = spoken_wav(tmp_path, "What is the weather like in Paris today?")
    env = {k: v for k, v in os.environ.items() if k != "OPENAI_API_KEY"}
    server, port = await serve(env)
    profile = Path(tempfile.mkdtemp(prefix="flowspec-chromium-"))
    state: dict[str, Any] = {}
    try:
        async for devtools in chromium(f"http://127.0.0.1:{port}/?autostart=1&aec=0", wav,
                                       profile):
            await devtools.call("Page.enable")
            async with asyncio.timeout(60):
                while True:
                    raw = await devtools.evaluate(
                        "window.flowspec ? JSON.stringify({state: flowspec.state, "
                        "played: flowspec.bytesPlayed, mic: flowspec.micChunks, "
                        "turns: flowspec.turns(), title: document.title}) : null") or "{}"
                    state = json.loads(raw) if isinstance(raw, str) else {}
                    roles = {t["role"] for t in state.get("turns", []) if t["text"].strip()}
                    if state.get("played", 0) > 0 and roles >= {"user", "assistant"}:
                        break
                    await asyncio.sleep(0.25)
            shot = await devtools.call("Page.captureScreenshot", format="png")
            ARTIFACTS.mkdir(parents=True, exist_ok=True)
            (ARTIFACTS / "browser-voice.png").write_bytes(base64.b64decode(shot["data"]))
            header = await devtools.evaluate(
                "document.getElementById('spec-name').textContent + ' ' + "
                "document.getElementById('spec-version').textContent + ' ' + "
                "document.getElementById('state').textContent")
    except TimeoutError:
        pytest.fail(f"the page never showed a full exchange; last state: {state}")
    finally:
        server.send_signal(2)
        await server.wait()
        shutil.rmtree(profile, ignore_errors=True)
    assert header == "weather-voice v1 connected"
    assert state["mic"] > 0
    assert server.returncode == 0
