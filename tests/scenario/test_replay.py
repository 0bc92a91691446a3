"""A recorded call replays to the same bot output: the emulator plays the recording's model side
against the same caller, and flowspec says and does exactly what it did the first time."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import pytest

from flowspec.scenario.load import load_test_file
from flowspec.scenario.record import read_recording
from flowspec.scenario.runner import run_file

ROOT = Path(__file__).resolve().parents[2]

TURNS = """\
    turns:
      - say: What is the weather in Paris?
      - text: And tomorrow?
      - say: Tell me a long story about the weather.
      - barge_in: {after_ms: 600, say: Stop there.}
"""
RECORD = f"""\
flowspec_test: 1
spec: voice-assistant.yaml
scenarios:
  - name: recorded
    model:
      rules:
        - when: {{contains: Paris, input: audio}}
          call: {{name: get_weather, arguments: {{location: Paris}}}}
        - when: {{contains: story}}
          say: >
            Once upon a time the wind blew over the hills for days and days, and the rain came
            down on the fields, and nobody could remember a week like it.
{TURNS}"""
REPLAY = f"""\
flowspec_test: 1
spec: voice-assistant.yaml
scenarios:
  - name: replayed
    replay: call.jsonl
{TURNS}"""


def _wire(path: Path) -> list[Any]:
    """What flowspec sent, with the ids it makes itself (event ids, its user items' ids) and
    times left out (a truncation's `audio_end_ms` is how long the caller had been hearing the
    reply: a time)."""
    sent = []
    for line in read_recording(path):
        if line["dir"] == "out":
            event = {k: v for k, v in line["event"].items()
                     if k not in ("event_id", "audio_end_ms")}
            sent.append(re.sub(r'"fsu_[0-9a-f]+"', '"<id>"', json.dumps(event, sort_keys=True)))
    return sent


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    shutil.copy(ROOT / "specs" / "voice-assistant.yaml", tmp_path / "voice-assistant.yaml")
    (tmp_path / "record.test.yaml").write_text(RECORD)
    (tmp_path / "replay.test.yaml").write_text(REPLAY)
    return tmp_path


async def test_a_recorded_call_replays_to_the_same_output(folder: Path) -> None:
    [first] = await run_file(load_test_file(folder / "record.test.yaml"), record=folder)
    (folder / "record-1.jsonl").rename(folder / "call.jsonl")
    assert first.ok, first.failures
    [again] = await run_file(load_test_file(folder / "replay.test.yaml"), record=folder)
    assert again.ok, again.failures
    said = [turn.said for turn in first.heard]
    assert said == [turn.said for turn in again.heard]
    assert any("Paris" in words for turn in said for words in turn)  # the tool's answer
    interrupted = [len(t.interrupted_items) for t in first.heard]
    assert interrupted == [len(t.interrupted_items) for t in again.heard]
    assert sum(interrupted) == 1  # the barge-in, replayed too
    assert _wire(folder / "call.jsonl") == _wire(folder / "replay-1.jsonl")
    calls = [e for e in read_recording(folder / "replay-1.jsonl")
             if e["event"].get("type") == "conversation.item.create"
             and e["event"]["item"].get("type") == "function_call_output"]
    assert len(calls) == 1
