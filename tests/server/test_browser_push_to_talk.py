"""The page's push-to-talk for manual turns (`turn_detection: false`), in headless Chromium with
a fake microphone: nothing is sent until the space bar is held, releasing it commits the turn
the model then answers, and holding it again while the bot speaks stops the bot."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import pytest

from .test_browser import ROOT, DevTools, chromium, poll_page, serve, spoken_wav

SPACE = {"code": "Space", "key": " ", "windowsVirtualKeyCode": 32, "nativeVirtualKeyCode": 32}
PROBE = ("JSON.stringify({state: flowspec.state, ptt: flowspec.pushToTalk, "
         "mic: document.getElementById('mic').textContent, chunks: flowspec.micChunks, "
         "commits: flowspec.commits, interrupts: flowspec.interrupts, "
         "received: flowspec.bytesReceived, played: flowspec.bytesPlayed, "
         "last: flowspec.lastResponse, turns: flowspec.turns(), "
         "talk: !document.getElementById('talk').hidden})")


async def probe(devtools: DevTools) -> dict[str, Any]:
    raw = await devtools.evaluate(f"window.flowspec ? {PROBE} : null")
    value: dict[str, Any] = json.loads(raw) if isinstance(raw, str) else {}
    return value


async def wait_for(devtools: DevTools, what: str, check: Any) -> dict[str, Any]:
    state: dict[str, Any] = await poll_page(
        devtools, f"window.flowspec ? {PROBE} : null",
        lambda s: isinstance(s, dict) and check(s), what, every_s=0.1)
    return state


async def key(devtools: DevTools, kind: str) -> None:
    await devtools.call("Input.dispatchKeyEvent", type=kind, **SPACE)


async def test_push_to_talk_sends_while_held_commits_on_release_and_cuts_the_bot_off(
        tmp_path: Path) -> None:
    spec = tmp_path / "manual.yaml"
    spec.write_text((ROOT / "specs" / "voice-assistant.yaml").read_text().replace(
        "turn_detection: {type: semantic_vad, eagerness: medium}", "turn_detection: false"))
    assert "turn_detection: false" in spec.read_text()
    wav = spoken_wav(tmp_path, "What is the weather like in Paris today?")
    env = {k: v for k, v in os.environ.items() if k != "OPENAI_API_KEY"}
    server, port = await serve(env, str(spec))
    profile = Path(tempfile.mkdtemp(prefix="flowspec-chromium-"))
    try:
        async for devtools in chromium(f"http://127.0.0.1:{port}/?autostart=1&aec=0", wav,
                                       profile):
            await devtools.call("Page.enable")
            state = await wait_for(devtools, "a live call with its mic on", lambda s: s.get(
                "state") == "connected" and s.get("mic") == "mic on")
            assert state["ptt"] and state["talk"]
            # The mic runs, but nothing goes out until the talk control is held.
            for _ in range(5):
                assert (await probe(devtools))["chunks"] == 0
                await asyncio.sleep(0.1)
            await key(devtools, "keyDown")
            # 4 s of microphone, 20 ms a chunk: the half-second lead-in and the question.
            await wait_for(devtools, "4 s of speech sent", lambda s: s.get("chunks", 0) >= 200)
            await key(devtools, "keyUp")
            state = await wait_for(devtools, "the bot's spoken answer", lambda s: s.get(
                "commits") == 1 and s.get("received", 0) > 0)
            assert state["interrupts"] == 1 and not state["last"]
            # Holding the key again while the bot speaks stops it.
            await key(devtools, "keyDown")
            state = await wait_for(devtools, "the answer cut off", lambda s: s.get(
                "last") == "interrupted")
            assert state["interrupts"] == 2
            roles = {t["role"] for t in state["turns"] if t["text"].strip()}
            assert "user" in roles, state["turns"]
            await key(devtools, "keyUp")
    finally:
        server.send_signal(2)
        await server.wait()
        shutil.rmtree(profile, ignore_errors=True)


@pytest.mark.parametrize(("node", "manual"), [
    ("{type: openai.realtime, settings: {session_properties: {audio: {input: "
     "{turn_detection: false}}}}}", True),
    ("{type: openai.realtime}", False),
    ("{type: openai.realtime_beta, base_url: 'ws://127.0.0.1:9/v1/realtime', "
     "session_properties: {turn_detection: false}}", True),
    ("{type: openai.realtime_beta, base_url: 'ws://127.0.0.1:9/v1/realtime'}", False),
])
def test_the_page_is_told_when_the_model_takes_manual_turns(node: str, manual: bool) -> None:
    from flowspec.server.app import manual_turns
    from flowspec.spec.compile import compile_text

    graph = compile_text(f"""\
flowspec: 1
name: t
nodes:
  caller: {{type: transport.websocket, audio: {{encoding: pcm16, sample_rate: 24000}}}}
  llm: {node}
edges: [caller -> llm -> caller]
""", "t.yaml", env={}).raise_for_errors()
    assert manual_turns(graph) is manual
