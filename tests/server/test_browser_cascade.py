"""The browser page on the cascaded voice bot, in headless Chromium with a fake microphone:
`flowspec serve specs/voice-responses.yaml` with no key, a question spoken by espeak-ng into the
page's microphone, transcribed, answered by the Responses model and spoken back; the page plays
the answer and shows both transcripts."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any

import pytest

from flowspec.emulator import voice
from tests.server.test_browser import ARTIFACTS, chromium, serve, spoken_wav

BYTES_PER_MS = 48  # the page plays 24 kHz PCM16


async def test_a_cascaded_conversation_through_the_page(tmp_path: Path) -> None:
    wav = spoken_wav(tmp_path, "What is the weather like in Paris today?")
    env = {k: v for k, v in os.environ.items() if k != "OPENAI_API_KEY"}
    server, port = await serve(env, "specs/voice-responses.yaml")
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
                        "played: flowspec.bytesPlayed, received: flowspec.bytesReceived, "
                        "mic: flowspec.micChunks, turns: flowspec.turns()}) : null") or "{}"
                    state = json.loads(raw) if isinstance(raw, str) else {}
                    said = [t["text"] for t in state.get("turns", [])
                            if t["role"] == "assistant" and t["text"].strip()]
                    heard = [t for t in state.get("turns", [])
                             if t["role"] == "user" and t["text"].strip()]
                    # The first answer, played out to its end.
                    if heard and said and state.get("played", 0) >= voice.duration_ms(
                            said[0]) * BYTES_PER_MS:
                        break
                    await asyncio.sleep(0.25)  # polls the page; the timeout guards a hang
            shot = await devtools.call("Page.captureScreenshot", format="png")
            ARTIFACTS.mkdir(parents=True, exist_ok=True)
            (ARTIFACTS / "browser-cascade.png").write_bytes(base64.b64decode(shot["data"]))
            header = await devtools.evaluate(
                "document.getElementById('spec-name').textContent + ' ' + "
                "document.getElementById('state').textContent")
    except TimeoutError:
        pytest.fail(f"the page never showed a cascaded exchange; last state: {state}")
    finally:
        server.send_signal(2)
        await server.wait()
        shutil.rmtree(profile, ignore_errors=True)
    assert header == "voice-responses connected"
    assert state["mic"] > 0
    turns = [t for t in state["turns"] if t["text"].strip()]
    user = next(t["text"] for t in turns if t["role"] == "user")
    assistant = next(t["text"] for t in turns if t["role"] == "assistant")
    # The transcription session heard the spoken turn; the model's answer was spoken from it.
    described = re.fullmatch(r"\((\d+\.\d) seconds of audio\)", user)
    assert described is not None, turns
    assert assistant == f"You said: {user}"
    assert state["received"] >= voice.duration_ms(assistant) * BYTES_PER_MS
    assert server.returncode == 0
