"""The page's opt-in camera, in headless Chromium with a fake camera: a transport with
`video: {enabled: true, fps: 1}` gets JPEG frames, which reach the Realtime node as images."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import aiohttp

from .test_app import metric
from .test_browser import ROOT, chromium, poll_page, serve, spoken_wav


async def test_the_page_sends_camera_frames_when_the_transport_asks_for_them(
        tmp_path: Path) -> None:
    spec = tmp_path / "camera.yaml"
    text = (ROOT / "specs" / "voice-assistant.yaml").read_text()
    marker = "    audio: {encoding: pcm16, sample_rate: 24000}\n"
    assert marker in text
    spec.write_text(text.replace(marker, marker + "    video: {enabled: true, fps: 1}\n", 1))
    wav = spoken_wav(tmp_path, "Hello there.")
    env = {k: v for k, v in os.environ.items() if k != "OPENAI_API_KEY"}
    server, port = await serve(env, str(spec))
    profile = Path(tempfile.mkdtemp(prefix="flowspec-chromium-"))
    state: dict[str, Any] = {}
    try:
        async for devtools in chromium(f"http://127.0.0.1:{port}/?autostart=1&aec=0", wav,
                                       profile):
            await devtools.call("Page.enable")
            state = await poll_page(
                devtools, "window.flowspec ? JSON.stringify({frames: flowspec.framesSent, "
                "camera: document.getElementById('camera').textContent, "
                "notes: flowspec.notes()}) : null",
                lambda s: isinstance(s, dict) and s.get("frames", 0) >= 3, "camera frames sent")
            async with aiohttp.ClientSession() as http:
                metrics = await (await http.get(f"http://127.0.0.1:{port}/metrics")).text()
    finally:
        server.send_signal(2)
        await server.wait()
        shutil.rmtree(profile, ignore_errors=True)
    assert state["camera"] == "camera on"
    assert not [n for n in state["notes"] if n.startswith("error")], state["notes"]
    received = metric(metrics, "flowspec_transport_frames_total", direction="in",
                      kind="ImageFrame")
    assert received >= 2, metrics
