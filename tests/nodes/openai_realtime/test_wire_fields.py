"""Spec fields as they reach the wire: the connection's headers (organization, project,
default_headers, the OPENAI_API_KEY fallback), session fields of both dialects, the item that
item events carry, and what validate says of instructions given twice."""

from __future__ import annotations

import pytest

from flowspec.emulator import Emulator
from flowspec.frames import ImageFrame, TextFrame
from flowspec.nodes.openai_realtime.audio_in import VideoInput
from flowspec.runtime.bus import ConversationItemCreated, ConversationItemUpdated
from flowspec.spec.compile import compile_text

from .harness import STEP, run_spec, silence, spec, speech

GA_SESSION = """\
      session_properties:
        max_output_tokens: 512
        tracing: {workflow_name: support, group_id: g1, metadata: {team: voice}}
        prompt: {id: pmpt_1, version: "2", variables: {city: Paris}}
        truncation: disabled
        include: [item.input_audio_transcription.logprobs]
"""
CONNECTION = """\
    organization: org-123
    project: proj_456
    default_headers: {X-Trace: abc, OpenAI-Project: proj_override}"""


async def test_connection_headers_and_the_key_from_the_environment(
        emulator: Emulator, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-from-env")
    text = spec(emulator, node=CONNECTION, settings=GA_SESSION).replace("    api_key: test\n", "")
    async with run_spec(emulator, text) as run:
        record = await run.ready()
        headers = record.headers
        assert headers["Authorization"] == "Bearer sk-from-env"
        assert headers["OpenAI-Organization"] == "org-123"
        assert headers["X-Trace"] == "abc"
        assert headers["OpenAI-Project"] == "proj_override"  # the spec's own headers win
        (update,) = record.received_of("session.update")
        session = update["session"]
        assert session["max_output_tokens"] == 512
        assert session["tracing"] == {"workflow_name": "support", "group_id": "g1",
                                      "metadata": {"team": "voice"}}
        assert session["prompt"] == {"id": "pmpt_1", "version": "2",
                                     "variables": {"city": "Paris"}}
        assert session["truncation"] == "disabled"
        assert session["include"] == ["item.input_audio_transcription.logprobs"]
        assert not record.sent_of("error")


async def test_the_project_header_without_default_headers_and_a_key_of_its_own(
        emulator: Emulator, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-from-env")
    async with run_spec(emulator, spec(emulator, node="    project: proj_456")) as run:
        record = await run.ready()
        assert record.headers["OpenAI-Project"] == "proj_456"
        assert record.headers["Authorization"] == "Bearer test"  # api_key wins over the env
        assert "OpenAI-Organization" not in record.headers


async def test_beta_audio_formats_and_token_limit_on_the_wire(emulator: Emulator) -> None:
    settings = """\
      session_properties:
        input_audio_format: g711_ulaw
        output_audio_format: g711_alaw
        max_response_output_tokens: 300
        temperature: 0.7
"""
    async with run_spec(emulator, spec(emulator, beta=True, settings=settings)) as run:
        record = await run.ready()
        assert record.headers["OpenAI-Beta"] == "realtime=v1"
        (update,) = record.received_of("session.update")
        session = update["session"]
        assert session["input_audio_format"] == "g711_ulaw"
        assert session["output_audio_format"] == "g711_alaw"
        assert session["max_response_output_tokens"] == 300
        assert session["temperature"] == 0.7
        assert not record.sent_of("error")
        await run.session.send("caller", TextFrame(text="Say hello", role="user"))
        async with STEP(10):
            await record.wait_received("response.create")
            await run.wait_event(lambda: bool(record.sent_of("response.done")))
        # The server answers in the format asked for: G.711 A-law, one byte per 8 kHz sample.
        assert record.sent_of("response.audio.delta")


TRANSCRIBED = """\
      session_properties:
        audio:
          input:
            transcription: {model: gpt-4o-transcribe}
            turn_detection: {type: server_vad, silence_duration_ms: 500}
"""


async def test_item_events_carry_the_item(emulator: Emulator) -> None:
    async with run_spec(emulator, spec(emulator, settings=TRANSCRIBED)) as run:
        record = await run.ready()
        await run.caller.feed(speech() + silence(700))
        async with STEP(10):
            await run.wait_event(lambda: bool(record.sent_of(
                "conversation.item.input_audio_transcription.completed")))
            await run.wait_event(lambda: any(e.item.get("role") == "assistant"
                                             for e in run.of(ConversationItemCreated)))
        created = run.of(ConversationItemCreated)
        assert all(e.item and e.item.get("id") == e.item_id for e in created)
        (transcribed,) = record.sent_of(
            "conversation.item.input_audio_transcription.completed")
        async with STEP(5):
            await run.wait_event(lambda: any(
                e.item_id == transcribed["item_id"] and e.item.get("content") == [
                    {"type": "input_audio", "transcript": transcribed["transcript"]}]
                for e in run.of(ConversationItemUpdated)))
        assert all(e.item for e in run.of(ConversationItemUpdated))


def test_instructions_given_twice_warn_and_system_instruction_is_what_is_sent() -> None:
    text = """\
flowspec: 1
name: t
nodes:
  caller: {type: transport.websocket, audio: {encoding: pcm16, sample_rate: 24000}}
  llm:
    type: openai.realtime
    settings:
      system_instruction: Be brief.
      session_properties: {instructions: Be long.}
edges: [caller -> llm -> caller]
"""
    report = compile_text(text, "t.yaml", env={})
    (warning,) = report.warnings
    assert warning.code == "settings.instructions-overridden"
    assert warning.pointer == "/nodes/llm/settings/session_properties/instructions"
    assert "`system_instruction` is sent" in warning.message


def test_paused_video_sends_nothing_however_long_it_waits() -> None:
    video = VideoInput(paused=False, detail="low")
    frame = ImageFrame(image=b"\xff\xd8jpeg")
    assert video.accept(frame, 0.0) is not None
    assert video.accept(frame, 0.5) is None  # throttled: one a second
    video.paused = True
    assert video.accept(frame, 5.0) is None  # paused, long after the throttle let go
    video.paused = False
    sent = video.accept(frame, 5.1)
    assert sent is not None and sent["item"]["content"][0]["detail"] == "low"
