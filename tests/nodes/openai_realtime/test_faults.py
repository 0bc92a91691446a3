"""Provider errors, an expired session, dropped sockets and lost connections; retrieve, reset,
raw client events, settings rules (reasoning for models without it), video."""

from __future__ import annotations

import asyncio
import logging

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
    NodeFailed,
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


async def test_an_expired_session_reconnects_with_backoff_and_reseeds(
    emulator: Emulator,
) -> None:
    # The emulator answers the second response with OpenAI's error and keeps the socket open;
    # the node does not wait for the server to hang up: it closes and connects again.
    emulator.load_script("""\
rules:
  - when: {turn: 2}
    times: 1
    fail: {type: invalid_request_error, code: session_expired,
           message: Your session hit the maximum duration of 60 minutes.}
""", text=True)
    async with run_spec(emulator, spec(emulator)) as run:
        first = await run.ready()
        await run.session.send("caller", TextFrame(text="My name is Ada.", role="user"))
        await ended(run)
        await run.session.send("caller", TextFrame(text="What is my name?", role="user"))
        async with STEP(10):
            second = await run.connection(1)
            await first.wait_closed()
            await run.wait_event(lambda: len(run.of(ModelConnected)) >= 2)
        codes = [e.code for e in run.of(ProviderError)]
        assert codes == ["session_expired", "connection_lost"]  # the backoff's notice
        assert not any(e.fatal for e in run.of(ProviderError))
        connected = run.of(ModelConnected)[-1]
        assert connected.attempt == 2 and connected.seeded == 3
        async with STEP(5):
            created = await second.wait_received("conversation.item.create", count=3)
        seeded = [e["item"] for e in created]
        assert [(i["role"], i["content"][0]["type"]) for i in seeded] == [
            ("user", "input_text"), ("assistant", "output_text"), ("user", "input_text")]
        assert seeded[0]["content"][0]["text"] == "My name is Ada."
        assert seeded[1]["content"][0]["text"] == first.sent_of(
            "response.output_audio_transcript.done")[0]["transcript"]
        assert seeded[2]["content"][0]["text"] == "What is my name?"
        kinds = [e["type"] for e in second.received]
        assert kinds[:4] == ["session.update"] + ["conversation.item.create"] * 3
        await run.session.send("caller", TextFrame(text="Still there?", role="user"))
        async with STEP(10):
            await second.wait_sent("response.done")
        assert len(emulator.of_kind("realtime")) == 2


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


REASONING = "      session_properties: {reasoning: {effort: low}}\n"


async def test_reasoning_is_left_out_for_a_model_that_cannot_use_it_with_one_warning(
    emulator: Emulator, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="flowspec.nodes.openai_realtime")
    async with run_spec(emulator, spec(emulator, settings=REASONING)) as run:
        record = await run.ready()
        (update,) = record.received_of("session.update")
        assert "reasoning" not in update["session"]
        await run.session.send("caller", UpdateSettingsFrame(
            delta={"session_properties": {"reasoning": {"effort": "high"}}}, version=2))
        async with STEP(5):
            await run.wait_event(lambda: bool(run.of(SettingsApplied)))
        assert run.of(SettingsApplied)[0].changed == ()  # nothing to send
        assert len(record.received_of("session.update")) == 1
        assert not run.of(ProviderError)  # the choice: a log warning, not a bus event
    warnings = [r for r in caplog.records if "reasoning" in r.getMessage()]
    assert len(warnings) == 1 and warnings[0].levelno == logging.WARNING
    assert "'gpt-realtime-1.5' cannot use `reasoning`" in warnings[0].getMessage()


async def test_reasoning_is_sent_for_a_reasoning_model(
    emulator: Emulator, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="flowspec.nodes.openai_realtime")
    text = spec(emulator, settings=REASONING).replace("gpt-realtime-1.5", "gpt-realtime-2")
    async with run_spec(emulator, text) as run:
        record = await run.ready()
        (update,) = record.received_of("session.update")
        assert update["session"]["reasoning"] == {"effort": "low"}
        assert not record.sent_of("error")
    assert not [r for r in caplog.records if "reasoning" in r.getMessage()]


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


class BrokenWire:
    """A model connection whose next read fails in a way the node does not expect."""

    closed = False

    async def send(self, event: object) -> None:
        return None

    async def receive(self) -> None:
        raise RuntimeError("a bug below the node")

    async def close(self) -> None:
        self.closed = True


async def test_a_connection_loop_that_fails_unexpectedly_ends_the_session(
    emulator: Emulator,
) -> None:
    wire = BrokenWire()

    async def connect(url: str, headers: object, node_id: str) -> BrokenWire:
        return wire

    async with run_spec(emulator, spec(emulator), connect=connect) as run:
        async with STEP(10):
            await run.session.wait()
        (failed,) = run.of(NodeFailed)
        assert (failed.node_id, failed.during, failed.fatal) == ("llm", "task", True)
        assert "a bug below the node" in run.session.close_reason
    assert wire.closed
