"""`openai.transcribe` against the emulator: the caller's audio in; interim and final user
transcripts, the user's speech started/stopped and a barge-in interrupt out; GA and beta
dialects, manual turns, live settings and reconnects."""

from __future__ import annotations

from flowspec.emulator import Emulator, parse_script
from flowspec.frames import (
    CommitInputFrame,
    Frame,
    InterruptFrame,
    TextFrame,
    TranscriptFrame,
    UpdateSettingsFrame,
    UserSpeechEndedFrame,
    UserSpeechStartedFrame,
)
from flowspec.nodes.openai_transcribe.node import TranscribeNode, transcription_url
from flowspec.runtime.bus import Metrics, ModelConnected, ProviderError, SettingsApplied
from flowspec.spec.models.base import NodeSpec
from tests.nodes.cascade_harness import STEP, Run, run_nodes, transcribe_spec
from tests.nodes.openai_realtime.harness import silence, speech

EDGES = ["caller -> stt -> sink"]
VAD = {"type": "server_vad", "silence_duration_ms": 400}
QUESTION = "what is the weather in Paris"


def nodes(emu: Emulator, **fields: object) -> dict[str, str | NodeSpec]:
    return {"caller": "transport.websocket", "stt": transcribe_spec(emu, **fields),
            "sink": "test.recorder"}


def finals(run: Run) -> list[TranscriptFrame]:
    return [f for f in run.recorder("sink").of(TranscriptFrame) if f.final]


async def wait_finals(run: Run, count: int) -> list[TranscriptFrame]:
    sink = run.recorder("sink")
    async with STEP(10):
        await sink.wait_for(lambda: len(finals(run)) >= count)
    return finals(run)


async def ready(run: Run) -> None:
    node = run.node("stt")
    assert isinstance(node, TranscribeNode)
    async with STEP(10):
        await node.ready.wait()


def kinds(frames: list[Frame]) -> list[str]:
    return [type(f).__name__ for f in frames]


def test_the_url_asks_for_a_transcription_session() -> None:
    assert transcription_url("https://api.openai.com/v1/realtime") == (
        "wss://api.openai.com/v1/realtime?intent=transcription")
    assert transcription_url("ws://127.0.0.1:9/v1/realtime?x=1") == (
        "ws://127.0.0.1:9/v1/realtime?x=1&intent=transcription")


async def test_a_spoken_turn_gives_speech_events_interim_and_final_transcripts(
    emulator: Emulator,
) -> None:
    emulator.script = parse_script(f"audio_transcripts: [{QUESTION}]")
    settings = {"model": "gpt-4o-transcribe", "language": "en", "prompt": "Weather words.",
                "noise_reduction": "near_field", "turn_detection": VAD,
                "include": ["item.input_audio_transcription.logprobs"]}
    async with run_nodes(emulator, nodes(emulator, settings=settings), EDGES) as run:
        await ready(run)
        await run.caller.feed(silence(300) + speech("What is the weather in Paris?")
                              + silence(700))
        (final,) = await wait_finals(run, 1)
        sink = run.recorder("sink").frames
    (record,) = emulator.of_kind("transcription")
    assert record.dialect == "ga" and record.query == {"intent": "transcription"}
    assert record.headers["Authorization"] == "Bearer test-key"
    (update,) = record.received_of("session.update")
    assert update["session"] == {
        "type": "transcription",
        "audio": {"input": {"format": {"type": "audio/pcm", "rate": 24000},
                            "transcription": {"model": "gpt-4o-transcribe", "language": "en",
                                              "prompt": "Weather words."},
                            "noise_reduction": {"type": "near_field"},
                            "turn_detection": VAD}},
        "include": ["item.input_audio_transcription.logprobs"]}
    # The update answers the server's session.created; no audio went before it was applied.
    types = [e["type"] for e in record.received]
    assert types[0] == "session.update" and set(types[1:]) == {"input_audio_buffer.append"}
    assert kinds(sink)[:3] == ["UserSpeechStartedFrame", "InterruptFrame",
                               "UserSpeechEndedFrame"]
    started = sink[0]
    assert isinstance(started, UserSpeechStartedFrame)
    (server_started,) = record.sent_of("input_audio_buffer.speech_started")
    assert started.item_id == server_started["item_id"]
    assert started.audio_start_ms == server_started["audio_start_ms"]
    interim = [f for f in sink if isinstance(f, TranscriptFrame) and not f.final]
    assert [f.text for f in interim] == [e["delta"] for e in record.sent_of(
        "conversation.item.input_audio_transcription.delta")]
    assert "".join(f.text for f in interim) == QUESTION
    assert sink.index(interim[-1]) < sink.index(final)  # the deltas come before the final
    assert final == TranscriptFrame(text=QUESTION, role="user", final=True,
                                    item_id=started.item_id, language="en")
    assert {f.item_id for f in interim} == {started.item_id}
    (metrics,) = [e for e in run.of(Metrics) if "transcription_ms" in e.values]
    assert metrics.values["total_tokens"] > 0


async def test_speech_start_interrupts_what_is_downstream_unless_told_not_to(
    emulator: Emulator,
) -> None:
    audio = speech("Hello there.") + silence(700)
    async with run_nodes(emulator, nodes(emulator, settings={"turn_detection": VAD}),
                         EDGES) as run:
        await ready(run)
        sink = run.recorder("sink")
        sink.hold()  # busy: what stt sends next waits on the edge
        await run.session.send("stt", TextFrame(text="delivered", role="user"))
        await run.session.send("stt", TextFrame(text="stale", role="user"))
        await run.caller.feed(audio)
        async with STEP(10):
            await sink.wait_for(lambda: bool(sink.of(InterruptFrame)))
        sink.release()
        await wait_finals(run, 1)
        # The interrupt flushed the text still queued towards the sink.
        assert [f.text for f in sink.of(TextFrame)] == ["delivered"]
    async with run_nodes(emulator, nodes(emulator, should_interrupt=False,
                                         settings={"turn_detection": VAD}), EDGES) as run:
        await ready(run)
        await run.caller.feed(audio)
        await wait_finals(run, 1)
        frames = run.recorder("sink").frames
        assert kinds(frames)[:2] == ["UserSpeechStartedFrame", "UserSpeechEndedFrame"]
        assert not run.recorder("sink").of(InterruptFrame)


async def test_beta_dialect_configures_first_on_its_own_header(emulator: Emulator) -> None:
    emulator.script = parse_script("audio_transcripts: [book a table]")
    settings = {"model": "whisper-1", "turn_detection": VAD, "noise_reduction": "far_field"}
    async with run_nodes(emulator, nodes(emulator, dialect="beta", settings=settings),
                         EDGES) as run:
        await ready(run)
        await run.caller.feed(speech("Book a table.") + silence(700))
        (final,) = await wait_finals(run, 1)
        interim = [f for f in run.recorder("sink").of(TranscriptFrame) if not f.final]
    assert final.text == "book a table" and final.language is None
    assert [f.text for f in interim] == ["book a table"]  # whisper-1: the whole text at once
    (record,) = emulator.of_kind("transcription")
    assert record.dialect == "beta" and record.headers["OpenAI-Beta"] == "realtime=v1"
    assert record.received[0] == {
        "type": "transcription_session.update", "event_id": "fs_transcribe_1",
        "session": {"input_audio_format": "pcm16",
                    "input_audio_transcription": {"model": "whisper-1"},
                    "input_audio_noise_reduction": {"type": "far_field"},
                    "turn_detection": VAD}}
    audio = [f for f in run.of(Metrics) if "audio_seconds" in f.values]
    assert audio and audio[0].values["audio_seconds"] > 0.5


async def test_manual_turns_commit_when_upstream_says_the_turn_ended(emulator: Emulator) -> None:
    emulator.script = parse_script("audio_transcripts: [first turn, second turn]")
    async with run_nodes(emulator, nodes(emulator, settings={"turn_detection": False}),
                         EDGES) as run:
        await ready(run)
        (record,) = emulator.of_kind("transcription")
        assert record.received_of("session.update")[0]["session"]["audio"]["input"][
            "turn_detection"] is None
        await run.caller.feed(speech("First turn.") + silence(200))
        await run.session.send("caller", UserSpeechEndedFrame())  # a local VAD's end
        (first,) = await wait_finals(run, 1)
        await run.session.send("caller", CommitInputFrame())  # nothing new: no commit
        await run.caller.feed(speech("Second turn."))
        await run.session.send("caller", CommitInputFrame())  # the page's commit
        second = (await wait_finals(run, 2))[1]
        frames = run.recorder("sink").frames
    assert (first.text, second.text) == ("first turn", "second turn")
    assert len(record.received_of("input_audio_buffer.commit")) == 2
    assert not record.sent_of("error")
    assert not [f for f in frames if isinstance(f, UserSpeechStartedFrame | InterruptFrame)]
    assert UserSpeechEndedFrame() in frames  # passed on: downstream learns the turn ended


async def test_a_live_settings_change_is_one_minimal_session_update(emulator: Emulator) -> None:
    async with run_nodes(emulator, nodes(emulator, settings={"language": "en"}), EDGES) as run:
        await ready(run)
        (record,) = emulator.of_kind("transcription")
        await run.session.send("caller", UpdateSettingsFrame(delta={"language": "fr"},
                                                             version=2))
        async with STEP(10):
            updates = await record.wait_received("session.update", count=2)
            await record.wait_sent("session.updated", count=2)
            await run.wait_event(lambda: bool(run.of(SettingsApplied)))
    assert updates[1]["session"] == {"type": "transcription", "audio": {"input": {
        "transcription": {"model": "gpt-4o-transcribe", "language": "fr"}}}}
    assert run.of(SettingsApplied)[0].version == 2


async def test_a_dropped_session_reconnects_and_hears_the_next_turn(emulator: Emulator) -> None:
    emulator.script = parse_script("audio_transcripts: [before the drop, after the drop]")
    async with run_nodes(emulator, nodes(emulator, settings={"turn_detection": VAD}),
                         EDGES) as run:
        await ready(run)
        await run.caller.feed(speech("Before the drop.") + silence(700))
        await wait_finals(run, 1)
        assert emulator.drop("transcription") == 1
        async with STEP(10):
            await run.wait_event(lambda: len(run.of(ModelConnected)) == 2)
        await run.caller.feed(speech("After the drop.") + silence(700))
        texts = [f.text for f in await wait_finals(run, 2)]
    assert texts == ["before the drop", "after the drop"]
    first, second = emulator.of_kind("transcription")
    assert first.closed and second.received_of("session.update")
    assert [e.attempt for e in run.of(ModelConnected)] == [1, 2]
    lost = [e for e in run.of(ProviderError) if e.code == "connection_lost"]
    assert lost and not lost[0].fatal


async def test_a_refused_configuration_is_reported_and_the_server_defaults_still_listen(
    emulator: Emulator,
) -> None:
    # A model the server does not have: it refuses the whole update.
    settings = {"model": "gpt-4o-nope", "turn_detection": VAD}
    async with run_nodes(emulator, nodes(emulator, settings=settings), EDGES) as run:
        await ready(run)
        (refused,) = [e for e in run.of(ProviderError) if e.code == "invalid_value"]
        assert "gpt-4o-nope" in refused.message and not refused.fatal
        await run.caller.feed(speech("Still heard.") + silence(700))
        async with STEP(10):
            await run.recorder("sink").wait_for(
                lambda: bool(run.recorder("sink").of(UserSpeechEndedFrame)))
    (record,) = emulator.of_kind("transcription")
    (error,) = record.sent_of("error")
    assert error["error"]["event_id"] == "fs_transcribe_1"
    # Without a transcription model the server still finds the turns, and transcribes none.
    assert record.sent_of("input_audio_buffer.committed")
    assert not finals(run)
