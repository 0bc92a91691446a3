"""`flowspec chat` against a model that cannot be reached, on both Responses transports: exit 1
with the reason on stderr, no traceback, no unclosed HTTP session, and nothing typed echoed."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("transport", ["websocket", "http"])
def test_an_unreachable_model_is_one_clear_failure(tmp_path: Path, transport: str) -> None:
    spec = tmp_path / "bot.yaml"
    spec.write_text(f"""\
flowspec: 1
name: t
nodes:
  chat: {{type: transport.text}}
  llm:
    type: openai.responses
    transport: {transport}
    api_key: sk-test
    base_url: http://127.0.0.1:1/v1
    ws_url: ws://127.0.0.1:1/v1/responses
edges: [chat -> llm -> chat]
""")
    env = {k: v for k, v in os.environ.items() if k != "OPENAI_API_KEY"}
    result = subprocess.run([sys.executable, "-m", "flowspec.cli", "chat", str(spec)],
                            cwd=ROOT, env=env, input="a secret question\n", text=True,
                            capture_output=True, timeout=120, check=False)
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr and "Unclosed" not in result.stderr, result.stderr
    assert "Cannot connect to host 127.0.0.1:1" in result.stderr, result.stderr
    assert all(line.startswith("flowspec chat: ") for line in result.stderr.splitlines()
               if line.strip()), result.stderr
    assert "a secret question" not in result.stdout + result.stderr


def test_run_with_an_unreachable_model_exits_1_and_writes_nothing(tmp_path: Path) -> None:
    from flowspec.audio import AudioFormat, write_wav

    spec = tmp_path / "cascade.yaml"
    text = (ROOT / "specs" / "voice-responses.yaml").read_text()
    marker = "    type: openai.responses\n"
    assert marker in text
    spec.write_text(text.replace(marker, marker + "    api_key: sk-test\n"
                                 "    ws_url: ws://127.0.0.1:1/v1/responses\n", 1))
    source, target = tmp_path / "question.wav", tmp_path / "answer.wav"
    write_wav(source, AudioFormat("pcm16", 24000), bytes(48000))
    env = {k: v for k, v in os.environ.items() if k != "OPENAI_API_KEY"}
    result = subprocess.run([sys.executable, "-m", "flowspec.cli", "run", str(spec), "--in",
                             str(source), "--out", str(target)], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 1, result.stderr
    assert "Cannot connect to host 127.0.0.1:1" in result.stderr
    assert "Traceback" not in result.stderr and "Unclosed" not in result.stderr
    assert not target.exists()
