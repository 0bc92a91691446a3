"""The browser page and the conversation layer, in headless Chromium.

`flowspec serve` (no key: the emulator answers) serves a spec that greets by name. The page is
opened with the call's variables in its own URL, among parameters that are not variables; it
must pass on the declared ones only, play the greeting filled with them, and, when the bot ends
the call, play the goodbye to its end before the socket closes and show why the call ended. A
value that breaks the spec shows why the call was refused.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import pytest

from flowspec.audio import AudioFormat, write_wav

from .test_browser import ARTIFACTS, DevTools, chromium, serve

GREETER = """\
flowspec: 1
name: greeter
nodes:
  caller: {type: transport.websocket, audio: {encoding: pcm16, sample_rate: 24000}}
  agent:
    type: openai.realtime
    settings: {system_instruction: "You help {{customer_name}}, on the {{plan}} plan."}
edges: [caller -> agent -> caller]
variables:
  customer_name: {default: there, maxLength: 40}
  plan: {type: string, enum: [free, pro], default: free}
conversation:
  opening: {say: "Hello {{customer_name}}."}
  end_call: {goodbye: "Goodbye {{customer_name}}, enjoy the {{plan}} plan!"}
"""
STATE = ("window.flowspec ? JSON.stringify({state: flowspec.state, url: flowspec.url, "
         "played: flowspec.bytesPlayed, received: flowspec.bytesReceived, "
         "turns: flowspec.turns(), notes: flowspec.notes(), reason: flowspec.endedReason, "
         "atClose: flowspec.atClose, status: document.getElementById('state').textContent}) "
         ": null")


async def page_state(devtools: DevTools) -> dict[str, Any]:
    raw = await devtools.evaluate(STATE)
    state: dict[str, Any] = json.loads(raw) if isinstance(raw, str) else {}
    return state


async def wait_for(devtools: DevTools, what: str, done: Any) -> dict[str, Any]:
    """Poll the page until `done(state)`; bounded, failing with the last state seen."""
    state: dict[str, Any] = {}
    try:
        async with asyncio.timeout(30):
            while True:
                state = await page_state(devtools)
                if done(state):
                    return state
                await asyncio.sleep(0.1)
    except TimeoutError:
        pytest.fail(f"the page never showed {what}; last state: {state}")


def bot_says(state: dict[str, Any]) -> list[str]:
    return [t["text"] for t in state.get("turns", []) if t["role"] == "assistant" and t["final"]]


async def test_the_page_greets_with_its_variables_and_shows_why_the_call_ended(
        tmp_path: Path) -> None:
    spec = tmp_path / "greeter.yaml"
    spec.write_text(GREETER)
    quiet = tmp_path / "quiet.wav"  # the fake microphone hears nothing: no turn, no barge-in
    write_wav(quiet, AudioFormat("pcm16", 48000, 1), bytes(48000 * 2))
    env = {k: v for k, v in os.environ.items() if k != "OPENAI_API_KEY"}
    server, port = await serve(env, str(spec), "--no-admin", "--no-watch")
    profile = Path(tempfile.mkdtemp(prefix="flowspec-chromium-"))
    base = f"http://127.0.0.1:{port}"
    try:
        async for devtools in chromium(
                f"{base}/?autostart=1&aec=0&customer_name=Ann&utm_source=mail&plan=pro",
                quiet, profile):
            state = await wait_for(devtools, "the greeting played", lambda s: bot_says(s)
                                   and s["played"] == s["received"] > 0)
            assert state["url"] == f"ws://127.0.0.1:{port}/ws?customer_name=Ann&plan=pro"
            assert bot_says(state) == ["Hello Ann."]
            greeting = state["received"]
            assert await devtools.evaluate("flowspec.send('please end the call')") is True
            state = await wait_for(devtools, "the call end", lambda s: s.get("atClose"))
            assert bot_says(state) == ["Hello Ann.", "Goodbye Ann, enjoy the pro plan!"]
            # Every byte of the goodbye had played when the socket closed.
            assert state["atClose"]["received"] > greeting
            assert state["atClose"]["played"] == state["atClose"]["received"]
            assert state["reason"] == "end_call"
            assert state["notes"] == ["The bot ended the call."]
            assert state["status"] == "disconnected (The bot ended the call.)"
            shot = await devtools.call("Page.captureScreenshot", format="png")
            ARTIFACTS.mkdir(parents=True, exist_ok=True)
            (ARTIFACTS / "browser-ended.png").write_bytes(base64.b64decode(shot["data"]))

            await devtools.call("Page.navigate", url=f"{base}/?autostart=1&customer_name="
                                + "A" * 41)
            state = await wait_for(devtools, "the refusal", lambda s: s.get("atClose"))
            assert state["reason"] == "refused"
            (note,) = state["notes"]
            assert note.startswith("Call refused: variable 'customer_name'")
            assert "longer than 40 characters" in note
            assert state["received"] == 0
    finally:
        server.send_signal(2)
        await server.wait()
        shutil.rmtree(profile, ignore_errors=True)
    assert server.returncode == 0
