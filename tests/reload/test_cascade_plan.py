"""The plan of a live change to a cascaded voice bot says how each node takes it: the
transcription node as a session.update of its own, the speech node from its next request."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from flowspec.cli import main

ROOT = Path(__file__).resolve().parents[2]


def test_a_plan_says_how_the_ears_and_the_voice_take_a_change(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    old = ROOT / "specs" / "voice-responses.yaml"
    new = tmp_path / "voice-responses.yaml"
    new.write_text(old.read_text().replace("voice: marin", "voice: cedar")
                   .replace("language: en", "language: fr"))
    assert main(["plan", str(old), str(new)]) == 0
    text = capsys.readouterr().out
    assert 'node stt (openai.transcribe): as one session.update of its own: {"language": ' \
        '"fr"}' in text
    assert 'node tts (openai.speech): from the next request: {"voice": "cedar"}' in text
    assert main(["plan", "--format", "json", str(old), str(new)]) == 0
    plan = json.loads(capsys.readouterr().out)
    actions = {a["node"]: a for a in plan["nodes"]}
    assert actions["stt"]["applies"] == "as one session.update of its own"
    assert actions["tts"] == {"node": "tts", "type": "openai.speech",
                              "delta": {"voice": "cedar"}, "applies": "from the next request"}
