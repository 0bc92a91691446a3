"""`openai.speech` against the emulator: a model's text deltas in, speech out from the first
sentence boundary on, one request per sentence in order, cancelled and dropped at once on an
interruption; failures reported, settings live, both stream formats. Every request body is
checked against the SDK's `SpeechCreateParams`."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from flowspec.emulator import Emulator, parse_script
from flowspec.emulator.voice import synthesize
from flowspec.frames import (
    AudioFrame,
    ErrorFrame,
    Frame,
    InterruptFrame,
    ResponseEndedFrame,
    ResponseStartedFrame,
    TextFrame,
    UpdateSettingsFrame,
)
from flowspec.nodes.openai_speech.node import SpeechNode
from flowspec.runtime.bus import Metrics, ProviderError, SettingsApplied
from tests.emulator.conformance import check_speech_request
from tests.nodes.cascade_harness import STEP, Run, run_nodes, speech_spec

EDGES = ["llm -> tts -> caller"]
SETTINGS = {"model": "gpt-4o-mini-tts", "voice": "marin", "instructions": "Warmly."}


@asynccontextmanager
async def voiced(emu: Emulator, **fields: object) -> AsyncIterator[Run]:
    """`llm` (a recorder the test sends the model's frames from) -> `tts` -> `caller`."""
    spec = speech_spec(emu, settings=fields.pop("settings", SETTINGS), **fields)
    async with run_nodes(emu, {"llm": "test.recorder", "tts": spec,
                               "caller": "transport.websocket"}, EDGES) as run:
        yield run
    for record in emu.of_kind("speech"):
        check_speech_request(record.received[0])


async def say(run: Run, *deltas: str, item: str = "msg_1", end: bool = True) -> None:
    for delta in deltas:
        await run.session.send("llm", TextFrame(text=delta, role="assistant", item_id=item))
    if end:
        await run.session.send("llm", ResponseEndedFrame(response_id="resp_1"))


def speech_node(run: Run) -> SpeechNode:
    node = run.node("tts")
    assert isinstance(node, SpeechNode)
    return node


def inputs(emu: Emulator) -> list[str]:
    return [record.received[0]["input"] for record in emu.of_kind("speech")]


def spoken(frames: list[Frame]) -> list[tuple[str, int]]:
    """(sentence, bytes of its audio) as the caller got them: each sentence's text comes as
    its audio starts."""
    said: list[tuple[str, int]] = []
    for frame in frames:
        if isinstance(frame, TextFrame):
            said.append((frame.text, 0))
        elif isinstance(frame, AudioFrame):
            text, size = said[-1]
            said[-1] = (text, size + len(frame.audio))
    return said


async def heard_out(run: Run, count: int = 1) -> list[Frame]:
    caller = run.caller
    async with STEP(10):
        await caller.wait_for(lambda: len(caller.of(ResponseEndedFrame)) >= count)
    return caller.received


async def test_the_first_sentence_is_spoken_before_the_reply_ends(emulator: Emulator) -> None:
    async with voiced(emulator) as run:
        await say(run, "Hello", " there.", end=False)
        assert speech_node(run).requests == 0  # no boundary yet: the whitespace has not come
        await say(run, " The", end=False)
        async with STEP(10):
            first = await emulator.wait_connection("speech")
        # The reply is still streaming: nothing after " The" was sent, and no end.
        assert first.received[0] == {"model": "gpt-4o-mini-tts", "input": "Hello there.",
                                     "voice": "marin", "response_format": "pcm",
                                     "instructions": "Warmly."}
        await say(run, " weather", " is", " fine")
        frames = await heard_out(run)
    assert inputs(emulator) == ["Hello there.", "The weather is fine"]
    assert spoken(frames) == [("Hello there.", len(synthesize("Hello there."))),
                              (" The weather is fine", len(synthesize("The weather is fine")))]
    assert isinstance(frames[-1], ResponseEndedFrame)  # after the audio it ends
    assert {f.item_id for f in frames if isinstance(f, AudioFrame)} == {"msg_1"}
    assert {f.sample_rate for f in frames if isinstance(f, AudioFrame)} == {24000}
    assert max(len(f.audio) for f in frames if isinstance(f, AudioFrame)) <= 4800
    assert first.headers["Authorization"] == "Bearer test-key"
    assert [e for e in run.of(Metrics) if "ttfb_ms" in e.values]


async def test_requests_run_one_after_another_in_the_order_of_the_text(
    emulator: Emulator,
) -> None:
    sentences = ["One is first.", " Two comes next!", " Is three last?", " Four, at the end."]
    async with voiced(emulator) as run:
        await say(run, "".join(sentences))  # one burst holding every boundary
        frames = await heard_out(run)
    assert inputs(emulator) == [s.strip() for s in sentences]
    assert spoken(frames) == [(s, len(synthesize(s.strip()))) for s in sentences]
    records = emulator.of_kind("speech")
    assert all(record.closed and not record.cut_short for record in records)
    assert len({record.id for record in records}) == 4


async def test_sse_stream_format_speaks_the_same_audio(emulator: Emulator) -> None:
    async with voiced(emulator, stream_format="sse") as run:
        await say(run, "Streamed as events. Both parts.")
        frames = await heard_out(run)
    assert [r.received[0]["stream_format"] for r in emulator.of_kind("speech")] == ["sse"] * 2
    assert spoken(frames) == [("Streamed as events.", len(synthesize("Streamed as events."))),
                              (" Both parts.", len(synthesize("Both parts.")))]


async def test_an_interruption_cancels_the_request_in_flight_and_drops_what_was_queued() -> None:
    # Paced: the audio of a sentence takes a while to arrive, so a request is in flight.
    async with Emulator.start(pace=1.0, keep_records=True) as emu:
        long = "This first sentence is long enough to take a good while to be spoken aloud. "
        async with voiced(emu) as run:
            caller = run.caller
            await run.session.send("llm", ResponseStartedFrame(response_id="resp_1"))
            await say(run, long, "The second sentence waits. ", "So does the third one.")
            async with STEP(10):
                await caller.wait_for(lambda: bool(caller.of(AudioFrame)))
                (first,) = emu.of_kind("speech")
                await run.session.send("llm", InterruptFrame())
                await first.wait_closed()
            assert first.cut_short  # the request was cancelled, not read to its end
            interrupted = max(i for i, f in enumerate(caller.received)
                              if isinstance(f, InterruptFrame))
            stale = [f for f in caller.received[interrupted:] if isinstance(f, AudioFrame)]
            assert len(stale) <= 1  # at most the frame already on its way
            heard = sum(len(f.audio) for f in caller.of(AudioFrame))
            assert heard < len(synthesize(long.strip()))
            # The reply's end still passes (a control frame), and nothing queued is spoken.
            await heard_out(run)
            await say(run, "A new answer.", item="msg_2")
            await heard_out(run, 2)
        assert inputs(emu) == [long.strip(), "A new answer."]
        texts = [f.text for f in caller.of(TextFrame)]
        assert texts == [long.strip(), "A new answer."]


async def test_a_refused_request_is_reported_and_the_next_sentence_is_spoken(
    emulator: Emulator,
) -> None:
    emulator.script = parse_script("""
rules:
  - when: {api: speech}
    times: 1
    fail: {type: requests, code: rate_limit_exceeded, status: 429, message: Slow down.}
""")
    async with voiced(emulator) as run:
        await say(run, "This one is refused. This one is spoken.")
        frames = await heard_out(run)
    (error,) = [f for f in frames if isinstance(f, ErrorFrame)]
    assert error.code == "rate_limit_exceeded" and "429" in error.message
    (reported,) = run.of(ProviderError)
    assert reported.code == "rate_limit_exceeded" and not reported.fatal
    assert [text for text, _size in spoken(frames)] == [" This one is spoken."]


async def test_settings_change_from_the_next_request_on(emulator: Emulator) -> None:
    async with voiced(emulator) as run:
        await say(run, "Before.")
        await heard_out(run)
        await run.session.send("llm", UpdateSettingsFrame(
            delta={"voice": "cedar", "model": "tts-1", "speed": 1.5}, version=2))
        await say(run, "After.")
        frames = await heard_out(run, 2)
    before, after = (r.received[0] for r in emulator.of_kind("speech"))
    assert before["voice"] == "marin" and "speed" not in before
    # tts-1 takes no instructions: they are left out rather than refused.
    assert after == {"model": "tts-1", "input": "After.", "voice": "cedar",
                     "response_format": "pcm", "speed": 1.5}
    assert run.of(SettingsApplied)[0].changed == ("model", "speed", "voice")
    assert spoken(frames)[1][1] < len(synthesize("After."))  # faster is shorter

