"""log.transcript: one JSON line per turn."""

from __future__ import annotations

import json
from pathlib import Path

from flowspec.frames import (
    InterruptFrame,
    ResponseEndedFrame,
    TextFrame,
    TranscriptFrame,
)
from flowspec.spec.models.audio import TranscriptLogSpec
from flowspec.testing import graph, run_graph


async def test_turns_are_logged_with_deltas_joined(tmp_path: Path) -> None:
    spec = TranscriptLogSpec.model_validate({"type": "log.transcript",
                                             "path": str(tmp_path / "{session_id}.jsonl")})
    compiled = graph({"llm": "test.recorder", "log": spec}, ["llm -> log"])
    run = await run_graph(compiled, [
        ("llm", TranscriptFrame(text="wea", role="user", final=False)),
        ("llm", TranscriptFrame(text="weather?", role="user", final=True, item_id="u1")),
        ("llm", TextFrame(text="Sunny ", item_id="a1")),
        ("llm", TextFrame(text="today.", item_id="a1")),
        ("llm", ResponseEndedFrame()),
        ("llm", TextFrame(text="And tomor", item_id="a2")),
        ("llm", InterruptFrame()),
        ("llm", TextFrame(text="typed", role="user")),
    ])
    lines = [json.loads(line) for line in
             (tmp_path / f"{run.session_id}.jsonl").read_text().splitlines()]
    assert [(x["role"], x["text"]) for x in lines] == [
        ("user", "weather?"), ("assistant", "Sunny today."), ("assistant", "And tomor"),
        ("user", "typed")]
    assert lines[2]["interrupted"] is True and "interrupted" not in lines[1]
    assert all(x["session_id"] == run.session_id and x["time"] for x in lines)


async def test_interim_transcripts_only_when_asked(tmp_path: Path) -> None:
    spec = TranscriptLogSpec.model_validate({"type": "log.transcript", "include_interim": True,
                                             "path": str(tmp_path / "t.jsonl")})
    compiled = graph({"llm": "test.recorder", "log": spec}, ["llm -> log"])
    await run_graph(compiled, [("llm", TranscriptFrame(text="he", role="user", final=False))])
    [line] = [json.loads(x) for x in (tmp_path / "t.jsonl").read_text().splitlines()]
    assert line["final"] is False and line["text"] == "he"
