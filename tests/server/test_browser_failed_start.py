"""A bot that cannot start (its Responses model cannot be reached) is shown as such on the
page: the error, and a status that says why instead of a bare close code."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from .test_browser import ROOT, chromium, poll_page, serve, spoken_wav


async def test_the_page_says_the_bot_could_not_start(tmp_path: Path) -> None:
    spec = tmp_path / "unreachable.yaml"
    text = (ROOT / "specs" / "voice-responses.yaml").read_text()
    marker = "    type: openai.responses\n"
    assert marker in text
    spec.write_text(text.replace(marker, marker + "    api_key: sk-test\n"
                                 "    ws_url: ws://127.0.0.1:1/v1/responses\n", 1))
    wav = spoken_wav(tmp_path, "Hello.")
    env = {k: v for k, v in os.environ.items() if k != "OPENAI_API_KEY"}
    server, port = await serve(env, str(spec))
    profile = Path(tempfile.mkdtemp(prefix="flowspec-chromium-"))
    state: dict[str, Any] = {}
    try:
        async for devtools in chromium(f"http://127.0.0.1:{port}/?autostart=1&aec=0", wav,
                                       profile):
            await devtools.call("Page.enable")
            state = await poll_page(
                devtools, "window.flowspec ? JSON.stringify({state: flowspec.state, "
                "status: document.getElementById('state').textContent, "
                "reason: flowspec.endedReason, code: flowspec.closeCode, "
                "notes: flowspec.notes()}) : null",
                lambda s: isinstance(s, dict) and s.get("state") == "disconnected"
                and bool(s.get("notes")), "the failed start")
    finally:
        server.send_signal(2)
        await server.wait()
        shutil.rmtree(profile, ignore_errors=True)
    assert state["code"] == 1011 and state["reason"] == "failed"
    assert any("could not start" in note for note in state["notes"]), state["notes"]
    assert "could not start" in state["status"] and "code 1011" not in state["status"], state
