"""Barge-in: the interrupt reaches the output transport, playback stops at once, and the
assistant item is truncated to what was played (never past what was received)."""

from __future__ import annotations

from flowspec.emulator import Emulator
from flowspec.frames import (
    AudioFrame,
    CommitInputFrame,
    InterruptFrame,
    ResponseEndedFrame,
    UserSpeechEndedFrame,
)

from .harness import STEP, run_spec, silence, spec, speech

VAD = """\
      session_properties:
        audio:
          input:
            turn_detection: {type: server_vad, silence_duration_ms: 500}
"""
MANUAL = """\
      session_properties:
        audio:
          input: {turn_detection: false}
"""
PLAYED_MS = 730


async def test_barge_in_stops_playback_and_truncates_to_the_played_audio(
    emulator: Emulator,
) -> None:
    async with run_spec(emulator, spec(emulator, settings=VAD)) as run:
        record = await run.ready()
        caller = run.caller
        await caller.feed(speech("What is the weather?") + silence(600))
        async with STEP(10):
            await caller.wait_for(lambda: bool(caller.of(ResponseEndedFrame)))
        received_ms = caller.audio_ms()
        assert received_ms > 2 * PLAYED_MS
        await caller.play(PLAYED_MS)
        assert caller.queue  # reply audio is still waiting to be played

        await caller.feed(speech("Stop, stop."))
        async with STEP(10):
            (truncate,) = await record.wait_received("conversation.item.truncate")
        assert caller.interrupts == 2 and caller.queue == []  # one per speech start
        item = caller.of(AudioFrame)[0].item_id
        assert item is not None and truncate["item_id"] == item and truncate["content_index"] == 0
        assert abs(truncate["audio_end_ms"] - PLAYED_MS) <= 20
        assert truncate["audio_end_ms"] <= received_ms
        played = caller.played[item]
        await caller.play(500)  # nothing of the interrupted item is left to play
        assert caller.played[item] == played
        async with STEP(10):
            await record.wait_sent("conversation.item.truncated")
        assert not record.sent_of("error")


async def test_late_audio_of_an_interrupted_response_is_dropped(emulator: Emulator) -> None:
    # Reply audio arrives while the user talks.
    async with Emulator.start(pace=0.5, keep_records=True) as slow:
        async with run_spec(slow, spec(slow, settings=VAD)) as run:
            record = await run.ready()
            caller = run.caller
            slow.load_script("rules: [{say: " + "One two three four five six seven. " * 6 + "}]",
                             text=True)
            await caller.feed(speech("Count for me.") + silence(600))
            async with STEP(10):
                await caller.wait_for(lambda: len(caller.of(AudioFrame)) >= 2)
            await caller.play(150)
            await caller.feed(speech("Enough."))
            async with STEP(10):
                await record.wait_received("conversation.item.truncate")
                await record.wait_sent("response.done")
            # Frames compare by value: find the barge-in's interrupt by position.
            last = max(i for i, f in enumerate(caller.received) if isinstance(f, InterruptFrame))
            first = caller.of(AudioFrame)[0].item_id
            late = [f for f in caller.received[last:]
                    if isinstance(f, AudioFrame) and f.item_id == first]
            assert record.sent_of("response.output_audio.delta")[-1]["item_id"] == first
            assert not late
            (truncate,) = record.received_of("conversation.item.truncate")
            assert abs(truncate["audio_end_ms"] - 150) <= 20
            assert not record.sent_of("error")


async def test_manual_turns_commit_and_replay_the_preroll_after_an_interruption(
    emulator: Emulator,
) -> None:
    node = "    user_audio_preroll_secs: 0.2"
    async with run_spec(emulator, spec(emulator, settings=MANUAL, node=node)) as run:
        record = await run.ready()
        (update,) = record.received_of("session.update")
        assert update["session"]["audio"]["input"]["turn_detection"] is None
        caller = run.caller
        await caller.feed(speech("Tell me a story.") + silence(100))
        await run.session.send("caller", UserSpeechEndedFrame())
        async with STEP(10):
            await caller.wait_for(lambda: bool(caller.of(ResponseEndedFrame)))
        kinds = [e["type"] for e in record.received]
        assert kinds.index("input_audio_buffer.commit") < kinds.index("response.create")
        await caller.play(300)
        await run.session.send("caller", InterruptFrame())
        async with STEP(10):
            (truncate,) = await record.wait_received("conversation.item.truncate")
        assert abs(truncate["audio_end_ms"] - 300) <= 20
        kinds = [e["type"] for e in record.received]
        clear = kinds.index("input_audio_buffer.clear")
        assert kinds[clear + 1] == "input_audio_buffer.append"
        replay = record.received[clear + 1]["audio"]
        assert len(replay) * 3 // 4 == 200 * 48  # 0.2 s of 24 kHz PCM16, base64
        await run.session.send("caller", CommitInputFrame())
        async with STEP(10):
            await record.wait_received("response.create", count=2)
        assert not [e for e in record.sent_of("error")
                    if e["error"]["code"] != "response_cancel_not_active"]
