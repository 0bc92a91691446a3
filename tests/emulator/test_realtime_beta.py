"""The legacy Realtime beta dialect (OpenAI-Beta: realtime=v1) and the retired-beta answer."""

from __future__ import annotations

import base64

import pytest
from openai import AsyncOpenAI
from websockets.exceptions import ConnectionClosed

from flowspec.emulator import Emulator

from .conftest import assert_conformant
from .helpers import b64, chunks, events_until, silence, tone, types

MODEL = "gpt-4o-realtime-preview"


async def test_beta_session_is_flat_and_rejects_ga_shapes(
    emulator: Emulator, client: AsyncOpenAI
) -> None:
    async with client.beta.realtime.connect(model=MODEL) as conn:
        created = (await conn.recv()).model_dump()
        assert created["session"]["modalities"] == ["text", "audio"]
        assert created["session"]["input_audio_format"] == "pcm16"
        await conn.session.update(session={"modalities": ["text"], "voice": "verse"})
        updated = (await conn.recv()).model_dump()
        assert updated["session"]["modalities"] == ["text"]
        assert updated["session"]["voice"] == "verse"
        assert updated["session"]["turn_detection"]["type"] == "server_vad"
        await conn.send({"type": "session.update",  # type: ignore[arg-type]
                         "session": {"type": "realtime", "output_modalities": ["audio"]}})
        rejected = (await conn.recv()).model_dump()
        assert rejected["error"]["code"] == "unknown_parameter"
        assert rejected["error"]["param"] == "session.type"
    assert emulator.connections[0].dialect == "beta"
    assert emulator.connections[0].headers["OpenAI-Beta"] == "realtime=v1"


async def test_beta_text_turn_uses_beta_names(client: AsyncOpenAI) -> None:
    async with client.beta.realtime.connect(model=MODEL) as conn:
        await conn.recv()
        await conn.session.update(session={"modalities": ["text"]})
        await conn.recv()
        await conn.conversation.item.create(item={
            "type": "message", "role": "user", "content": [{"type": "input_text", "text": "Yo"}]})
        await conn.response.create()
        events = await events_until(conn, "response.done")
    assert types(events) == [
        "conversation.item.created", "response.created", "rate_limits.updated",
        "response.output_item.added", "conversation.item.created", "response.content_part.added",
        "response.text.delta", "response.text.delta", "response.text.delta", "response.text.done",
        "response.content_part.done", "response.output_item.done", "response.done",
    ]
    final = events[-1].response
    assert final.modalities == ["text"] and final.output[0].content[0].type == "text"


async def test_beta_server_vad_audio_turn(client: AsyncOpenAI) -> None:
    async with client.beta.realtime.connect(model=MODEL) as conn:
        await conn.recv()
        await conn.session.update(session={"input_audio_transcription": {"model": "whisper-1"}})
        await conn.recv()
        for chunk in chunks(silence(200) + tone(600) + silence(400)):
            await conn.input_audio_buffer.append(audio=b64(chunk))
        events = await events_until(conn, "response.done")
    names = types(events)
    assert names[:4] == [
        "input_audio_buffer.speech_started", "input_audio_buffer.speech_stopped",
        "input_audio_buffer.committed", "conversation.item.created",
    ]
    assert "response.audio.delta" in names and "response.audio_transcript.delta" in names
    assert "response.output_audio.delta" not in names
    completed = [e for e in events
                 if e.type == "conversation.item.input_audio_transcription.completed"][0]
    # Committed audio runs from the padded start (0 ms) to the end of the silence (1000 ms).
    assert completed.transcript == "(1.0 seconds of audio)"
    audio = b"".join(base64.b64decode(e.delta) for e in events if e.type == "response.audio.delta")
    transcript = [e for e in events if e.type == "response.audio_transcript.done"][0].transcript
    assert transcript == "You said: (1.0 seconds of audio)"
    assert len(audio) > 0
    assert events[-1].response.output[0].content[0].type == "audio"


async def test_retired_beta_gets_beta_api_shape_disabled_and_close_4000() -> None:
    async with Emulator.start(pace=0, retired_beta=True, keep_records=True) as emu:
        async with AsyncOpenAI(api_key="k", base_url=emu.http_base_url,
                               websocket_base_url=emu.ws_base_url, max_retries=0) as client:
            async with client.beta.realtime.connect(model=MODEL) as conn:
                error = (await conn.recv()).model_dump()
                assert error["type"] == "error"
                assert error["error"]["code"] == "beta_api_shape_disabled"
                with pytest.raises(ConnectionClosed) as closed:
                    await conn.recv()
                assert closed.value.rcvd is not None and closed.value.rcvd.code == 4000
            # GA keeps working on the same host.
            async with client.realtime.connect(model="gpt-realtime") as conn:
                assert (await conn.recv()).type == "session.created"
    assert_conformant(emu)
