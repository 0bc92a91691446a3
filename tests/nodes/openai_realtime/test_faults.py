"""Provider errors, an expired session, dropped sockets and lost connections; retrieve, reset,
raw client events, settings rules (reasoning for models without it), video."""

from __future__ import annotations

import asyncio

import pytest

from flowspec.emulator import Emulator
from flowspec.errors import RemoteProtocolError
from flowspec.frames import (
    AudioFrame,
    ImageFrame,
    ResponseEndedFrame,
    TextFrame,
    UpdateSettingsFrame,
)
from flowspec.runtime.bus import (
    ModelConnected,
    ProviderError,
    SettingsApplied,
    SettingsRejected,
)

from .harness import STEP, Run, run_spec, spec


async def ended(run: Run, count: int = 1) -> None:
    async with STEP(10):
        await run.caller.wait_for(lambda: len(run.caller.of(ResponseEndedFrame)) >= count)


async def test_a_provider_error_is_reported_and_the_session_goes_on(emulator: Emulator) -> None:
    emulator.load_script("""\
rules:
  - when: {turn: 1}
    fail: {type: server_error, code: overloaded, message: Try later.}
""", text=True)
    async with run_spec(emulator, spec(emulator)) as run:
        record = await run.ready()
        await run.session.send("caller", TextFrame(text="Hello?", role="user"))
        async with STEP(10):
            await run.wait_event(lambda: bool(run.of(ProviderError)))
        (error,) = run.of(ProviderError)
        assert error.code == "overloaded" and not error.fatal
        await run.session.send("caller", TextFrame(text="Hello again?", role="user"))
        await ended(run)
        assert run.caller.of(AudioFrame)
        assert len(emulator.of_kind("realtime")) == 1 and not record.closed


async def test_a_dropped_socket_reconnects_and_reseeds_the_conversation(
    emulator: Emulator,
) -> None:
    emulator.load_script("rules: [{when: {turn: 2}, drop: true, times: 1}]", text=True)
    async with run_spec(emulator, spec(emulator)) as run:
        await run.ready()
        await run.session.send("caller", TextFrame(text="My name is Ada.", role="user"))
        await ended(run)
        await run.session.send("caller", TextFrame(text="What is my name?", role="user"))
        async with STEP(10):
            second = await run.connection(1)
            await run.wait_event(lambda: len(run.of(ModelConnected)) >= 2)
        connected = run.of(ModelConnected)[-1]
        assert connected.attempt == 2 and connected.seeded >= 2
        async with STEP(5):
            created = await second.wait_received("conversation.item.create", count=2)
        seeded = [e["item"] for e in created]
        assert seeded[0] == {"type": "message", "role": "user",
                             "content": [{"type": "input_text", "text": "My name is Ada."}]}
        assert seeded[1]["role"] == "assistant"
        assert any(e.code == "connection_lost" for e in run.of(ProviderError))
        await run.session.send("caller", TextFrame(text="Still there?", role="user"))
        async with STEP(10):
            await second.wait_sent("response.done")


async def test_a_connection_that_cannot_be_restored_ends_the_session(
    emulator: Emulator,
) -> None:
    async with run_spec(emulator, spec(emulator)) as run:
        await run.ready()
        await emulator.stop()
        async with STEP(10):
            await run.session.wait()
        assert run.session.close_reason.startswith("llm: The model connection could not")
        assert run.of(ProviderError)[-1].fatal


async def test_retrieve_reset_and_raw_client_events(emulator: Emulator) -> None:
    async with run_spec(emulator, spec(emulator)) as run:
        record = await run.ready()
        await run.session.send("caller", TextFrame(text="Remember this.", role="user"))
        await ended(run)
        user_item = record.sent_of("conversation.item.added")[0]["item"]["id"]
        first, second = await asyncio.gather(
            run.llm.retrieve_conversation_item(user_item),
            run.llm.retrieve_conversation_item(user_item))
        assert first["id"] == second["id"] == user_item
        assert len(record.received_of("conversation.item.retrieve")) == 1
        with pytest.raises(RemoteProtocolError):
            async with STEP(5):
                await run.llm.retrieve_conversation_item("item_missing")
        await run.llm.send_client_event({"type": "input_audio_buffer.clear"})
        async with STEP(5):
            (clear,) = await record.wait_received("input_audio_buffer.clear")
        assert clear["event_id"].startswith("fs_")
        await run.llm.reset_conversation()
        fresh = await run.connection(1)
        async with STEP(5):
            await fresh.wait_sent("session.updated")
        assert not fresh.received_of("conversation.item.create")


async def test_settings_rules_model_fixed_instructions_live(emulator: Emulator) -> None:
    async with run_spec(emulator, spec(emulator)) as run:
        record = await run.ready()
        await run.session.send("caller", UpdateSettingsFrame(delta={"model": "gpt-realtime-2"},
                                                             version=2))
        await run.session.send("caller", UpdateSettingsFrame(
            delta={"system_instruction": "Speak French."}, version=3))
        async with STEP(5):
            updates = await record.wait_received("session.update", count=2)
        assert updates[1]["session"] == {"type": "realtime", "instructions": "Speak French."}
        assert [e.version for e in run.of(SettingsRejected)] == [2]
        assert [e.changed for e in run.of(SettingsApplied)] == [("instructions",)]


async def test_video_frames_are_throttled_and_pausable(emulator: Emulator) -> None:
    node = "    video_frame_detail: low"
    async with run_spec(emulator, spec(emulator, node=node)) as run:
        record = await run.ready()
        for _ in range(3):
            await run.session.send("caller", ImageFrame(image=b"\xff\xd8jpeg"))
        run.llm.set_video_input_paused(True)
        async with STEP(5):
            (create,) = await record.wait_received("conversation.item.create")
        (part,) = create["item"]["content"]
        assert part["type"] == "input_image" and part["detail"] == "low"
        assert part["image_url"].startswith("data:image/jpeg;base64,")
        assert not record.received_of("response.create")
