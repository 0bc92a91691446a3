"""Opened over plain http under a name other than localhost, the page says why it has no
microphone and how to serve https, as the README does."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from .test_browser import ROOT, chromium, poll_page, serve, spoken_wav

HOW = "--tls-cert"


async def test_off_https_the_page_says_the_microphone_needs_https(tmp_path: Path) -> None:
    wav = spoken_wav(tmp_path, "Hello.")
    env = {k: v for k, v in os.environ.items() if k != "OPENAI_API_KEY"}
    server, port = await serve(env, "specs/voice-assistant.yaml", "--allowed-host", "bot.test")
    profile = Path(tempfile.mkdtemp(prefix="flowspec-chromium-"))
    mic = ""
    try:
        # bot.test is this machine, but to the browser an http page there is not secure.
        async for devtools in chromium(f"http://bot.test:{port}/?autostart=1", wav, profile,
                                       "--host-resolver-rules=MAP bot.test 127.0.0.1"):
            await devtools.call("Page.enable")
            mic = await poll_page(
                devtools, "document.getElementById('mic') ? "
                "document.getElementById('mic').textContent : ''",
                lambda m: isinstance(m, str) and m.startswith("mic unavailable"),
                "why the microphone is missing", timeout_s=30, as_json=False)
            secure = await devtools.evaluate("window.isSecureContext")
    finally:
        server.send_signal(2)
        await server.wait()
        shutil.rmtree(profile, ignore_errors=True)
    assert secure is False
    assert "https" in mic and "localhost" in mic and HOW in mic, mic
    assert "Cannot read properties" not in mic
    readme = (ROOT / "README.md").read_text()
    assert "only on https or on `localhost`" in readme and f"{HOW} cert.pem" in readme
