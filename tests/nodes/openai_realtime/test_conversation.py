"""Connect, configure, talk: the session handshake, audio both ways, transcripts (and the beta
node's `send_transcription_frames`), turns."""

from __future__ import annotations

from pathlib import Path

import pytest

from flowspec.audio import PCM16_24K, read_wav, write_wav
from flowspec.emulator import Emulator
from flowspec.frames import (
    AudioFrame,
    PauseInputFrame,
    ResponseEndedFrame,
    ResponseStartedFrame,
    ResumeInputFrame,
    TextFrame,
    TranscriptFrame,
    UserSpeechEndedFrame,
    UserSpeechStartedFrame,
)
from flowspec.runtime.bus import ConversationItemCreated, ConversationItemUpdated, Metrics

from .harness import STEP, run_spec, silence, spec, speech

TRANSCRIBED = """\
      system_instruction: Be brief.
      session_properties:
        instructions: overridden
        audio:
          input:
            transcription: {model: gpt-4o-transcribe}
            turn_detection: {type: server_vad, silence_duration_ms: 500}
"""


async def test_handshake_sends_one_update_from_the_settings(emulator: Emulator) -> None:
    async with run_spec(emulator, spec(emulator, settings=TRANSCRIBED)) as run:
        record = await run.ready()
        assert record.query == {"model": "gpt-realtime-1.5"}
        assert record.headers["Authorization"] == "Bearer test"
        assert "OpenAI-Beta" not in record.headers
        (update,) = record.received_of("session.update")
        assert update["session"]["type"] == "realtime"
        assert update["session"]["instructions"] == "Be brief."  # system_instruction wins
        assert record.received[0]["type"] == "session.update"


async def test_spoken_turn_from_a_wav_file_is_answered_with_audio(
    emulator: Emulator, tmp_path: Path
) -> None:
    wav = tmp_path / "turn.wav"
    write_wav(wav, PCM16_24K, speech() + silence(600))
    fmt, pcm = read_wav(wav)
    assert fmt == PCM16_24K
    async with run_spec(emulator, spec(emulator, settings=TRANSCRIBED)) as run:
        record = await run.ready()
        await run.caller.feed(pcm)
        async with STEP(10):
            await run.caller.wait_for(lambda: bool(run.caller.of(ResponseEndedFrame)))
        caller = run.caller
        assert caller.audio_ms() > 500
        assert {f.item_id for f in caller.of(AudioFrame)} == {
            record.sent_of("response.output_audio.delta")[0]["item_id"]}
        assert len(caller.of(ResponseStartedFrame)) == 1
        assert len(caller.of(UserSpeechStartedFrame)) == 1
        assert len(caller.of(UserSpeechEndedFrame)) == 1
        user = [f for f in caller.of(TranscriptFrame) if f.role == "user"]
        assert user and user[-1].final and not user[0].final
        bot = [f for f in caller.of(TranscriptFrame) if f.role == "assistant"]
        assert bot[-1].final and bot[-1].text == "".join(f.text for f in bot[:-1])
        appended = b"".join(__import__("base64").b64decode(e["audio"])
                            for e in record.received_of("input_audio_buffer.append"))
        assert appended == pcm[: len(appended)] and len(appended) >= len(pcm) - 960
        async with STEP(5):
            await caller.wait_for(lambda: any("processing_ms" in m.values
                                              for m in run.of(Metrics)))
        values = {k: v for m in run.of(Metrics) for k, v in m.values.items()}
        assert {"ttfb_ms", "processing_ms", "prompt_tokens", "completion_tokens",
                "input_audio_tokens", "output_audio_tokens", "cached_input_tokens",
                "cached_audio_tokens"} <= set(values)
        assert run.of(ConversationItemCreated)
        assert run.of(ConversationItemUpdated)


async def test_pause_drops_audio_and_resume_forwards_it(emulator: Emulator) -> None:
    async with run_spec(emulator, spec(emulator, node="    start_audio_paused: true")) as run:
        record = await run.ready()
        await run.caller.feed(silence(200))
        await run.session.send("caller", ResumeInputFrame())
        await run.caller.feed(silence(100))
        await run.session.send("caller", PauseInputFrame())
        await run.caller.feed(silence(300))
        run.llm.set_audio_input_paused(False)
        await run.caller.feed(silence(40))
        async with STEP(5):
            await record.wait_received("input_audio_buffer.append", count=7)
        appended = record.received_of("input_audio_buffer.append")
        assert len(appended) == 7  # 5 × 20 ms after the resume, 2 after set_audio_input_paused


async def test_text_modality_and_user_text(emulator: Emulator) -> None:
    settings = "      session_properties: {output_modalities: [text]}\n"
    async with run_spec(emulator, spec(emulator, settings=settings)) as run:
        record = await run.ready()
        await run.session.send("caller", TextFrame(text="Say hello", role="user"))
        async with STEP(10):
            await run.caller.wait_for(lambda: bool(run.caller.of(ResponseEndedFrame)))
        (create,) = record.received_of("response.create")
        assert create["response"] == {"output_modalities": ["text"]}
        texts = run.caller.of(TextFrame)
        assert texts and not run.caller.of(AudioFrame)
        assert "".join(t.text for t in texts) == record.sent_of(
            "response.output_text.done")[0]["text"]


BETA_TRANSCRIBED = """\
      session_properties:
        input_audio_transcription: {model: whisper-1}
        turn_detection: {type: server_vad, silence_duration_ms: 500}
"""


@pytest.mark.parametrize("send", [True, False], ids=["frames", "no-frames"])
async def test_beta_send_transcription_frames_controls_user_transcripts(
    emulator: Emulator, send: bool
) -> None:
    emulator.load_script("audio_transcripts: [what is the weather like today]", text=True)
    node = f"    send_transcription_frames: {str(send).lower()}"
    text = spec(emulator, beta=True, settings=BETA_TRANSCRIBED, node=node)
    async with run_spec(emulator, text) as run:
        record = await run.ready()
        await run.caller.feed(speech() + silence(600))
        async with STEP(10):
            await run.caller.wait_for(lambda: bool(run.caller.of(ResponseEndedFrame)))
        # The server transcribed the turn either way, before it answered; the node's output
        # keeps its order, so user transcripts would have reached the caller by now.
        (completed,) = record.sent_of("conversation.item.input_audio_transcription.completed")
        assert completed["transcript"] == "what is the weather like today"
        user = [f for f in run.caller.of(TranscriptFrame) if f.role == "user"]
        bot = [f for f in run.caller.of(TranscriptFrame) if f.role == "assistant"]
        assert bot and bot[-1].final
        if send:
            assert user[-1].final and user[-1].text == "what is the weather like today"
            assert [f.text for f in user[:-1]] and not any(f.final for f in user[:-1])
        else:
            assert user == []
        # The transcript is kept either way: it re-seeds a later connection.
        assert run.llm.history.text_of(completed["item_id"]) == completed["transcript"]
