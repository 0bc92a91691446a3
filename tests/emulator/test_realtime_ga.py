"""Realtime GA timelines of reference §3 driven by the official SDK client."""

from __future__ import annotations

import base64
import json

import numpy as np
from openai import AsyncOpenAI

from flowspec.emulator import Emulator, parse_script, voice

from .helpers import b64, chunks, events_until, silence, tone, types

WEATHER_TOOL = {
    "type": "function",
    "name": "get_weather",
    "description": "Weather for a city.",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string"}, "days": {"type": "integer", "minimum": 1}},
        "required": ["city", "days"],
    },
}


def rms(pcm16: bytes) -> float:
    samples = np.frombuffer(pcm16, dtype="<i2").astype(np.float64) / 32768.0
    return float(np.sqrt(np.mean(samples * samples)))


async def test_session_start_and_partial_update(emulator: Emulator, client: AsyncOpenAI) -> None:
    async with client.realtime.connect(model="gpt-realtime") as conn:
        created = await conn.recv()
        assert created.type == "session.created"
        session = created.session.model_dump(exclude_none=False)
        assert session["type"] == "realtime" and session["model"] == "gpt-realtime"
        assert session["audio"]["input"]["turn_detection"]["type"] == "server_vad"
        update = {"type": "realtime", "instructions": "Be brief.",
                  "audio": {"output": {"voice": "marin"}}}
        await conn.session.update(session=update)  # type: ignore[arg-type]
        updated = (await conn.recv()).model_dump()
        assert updated["type"] == "session.updated"
        # Partial update: only the given fields changed, the rest is the full effective session.
        assert updated["session"]["instructions"] == "Be brief."
        assert updated["session"]["audio"]["output"]["voice"] == "marin"
        assert updated["session"]["audio"]["input"] == session["audio"]["input"]
        assert updated["session"]["output_modalities"] == ["audio"]
    record = emulator.connections[0]
    assert record.kind == "realtime" and record.dialect == "ga"
    assert record.query == {"model": "gpt-realtime"}
    assert record.headers["Authorization"] == "Bearer test-key"
    assert record.received_of("session.update")[0]["session"] == update


async def test_ga_rejects_beta_shaped_updates_in_full(client: AsyncOpenAI) -> None:
    async with client.realtime.connect(model="gpt-realtime") as conn:
        await conn.recv()
        await conn.send({"type": "session.update", "event_id": "e1",  # type: ignore[arg-type]
                         "session": {"instructions": "x"}})
        missing = (await conn.recv()).model_dump()
        assert missing["error"]["code"] == "missing_required_parameter"
        assert missing["error"]["param"] == "session.type"
        assert missing["error"]["event_id"] == "e1"
        await conn.send({"type": "session.update",  # type: ignore[arg-type]
                         "session": {"type": "realtime", "instructions": "changed",
                                     "modalities": ["text"]}})
        unknown = (await conn.recv()).model_dump()
        assert unknown["error"]["code"] == "unknown_parameter"
        assert unknown["error"]["message"] == "Unknown parameter: 'session.modalities'."
        await conn.session.update(session={"type": "realtime"})
        after = (await conn.recv()).model_dump()
        assert after["type"] == "session.updated"
        assert after["session"]["instructions"] != "changed"


async def test_text_only_turn(client: AsyncOpenAI) -> None:
    async with client.realtime.connect(model="gpt-realtime") as conn:
        await conn.recv()
        await conn.session.update(session={"type": "realtime", "output_modalities": ["text"]})
        await conn.recv()
        await conn.conversation.item.create(
            item={"type": "message", "role": "user",
                  "content": [{"type": "input_text", "text": "Hi there"}]}
        )
        await conn.response.create()
        events = await events_until(conn, "response.done")
    assert types(events) == [
        "conversation.item.added", "conversation.item.done",
        "response.created", "rate_limits.updated", "response.output_item.added",
        "conversation.item.added", "response.content_part.added",
        *["response.output_text.delta"] * 4,  # "You", " said:", " Hi", " there"
        "response.output_text.done", "response.content_part.done", "response.output_item.done",
        "conversation.item.done", "response.done",
    ]
    deltas = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    done = events[-1].response
    assert deltas == "You said: Hi there"
    assert done.status == "completed" and done.usage.total_tokens > 0
    assert done.output[0].content[0].type == "output_text"
    assert done.output[0].content[0].text == deltas


async def test_manual_audio_turn_replies_with_audible_paced_audio(client: AsyncOpenAI) -> None:
    async with client.realtime.connect(model="gpt-realtime") as conn:
        await conn.recv()
        await conn.session.update(
            session={"type": "realtime", "audio": {"input": {"turn_detection": None}}}
        )
        await conn.recv()
        await conn.input_audio_buffer.append(audio=b64(tone(60)))
        await conn.input_audio_buffer.commit()
        too_small = (await conn.recv()).model_dump()
        assert too_small["error"]["code"] == "input_audio_buffer_commit_empty"
        assert "60.00ms" in too_small["error"]["message"]
        for chunk in chunks(tone(440)):
            await conn.input_audio_buffer.append(audio=b64(chunk))
        await conn.input_audio_buffer.commit()
        committed = await events_until(conn, "conversation.item.done")
        assert types(committed) == [
            "input_audio_buffer.committed", "conversation.item.added", "conversation.item.done"
        ]
        user = committed[-1].item
        assert user.content[0].type == "input_audio" and user.content[0].transcript is None
        await conn.response.create()
        events = await events_until(conn, "response.done")
    audio = b"".join(base64.b64decode(e.delta) for e in events
                     if e.type == "response.output_audio.delta")
    transcript = "".join(e.delta for e in events
                         if e.type == "response.output_audio_transcript.delta")
    (done,) = [e for e in events if e.type == "response.output_audio_transcript.done"]
    assert transcript == done.transcript == "You said: (0.5 seconds of audio)"
    assert rms(audio) > 0.02
    assert len(audio) == voice.duration_ms(transcript) * 48
    assert 40 <= voice.duration_ms(transcript) / len(transcript) <= 120
    part = [e for e in events if e.type == "response.content_part.added"][0].part
    assert part.type == "audio" and part.transcript == ""
    final = events[-1].response
    assert final.output[0].content[0].type == "output_audio"
    assert final.usage.output_token_details.audio_tokens > 0


async def test_server_vad_turn_with_transcription(emulator: Emulator, client: AsyncOpenAI) -> None:
    emulator.script = parse_script("audio_transcripts: [what is the weather in Paris]")
    async with client.realtime.connect(model="gpt-realtime") as conn:
        await conn.recv()
        await conn.session.update(session={
            "type": "realtime",
            "tools": [WEATHER_TOOL],  # type: ignore[list-item]
            "audio": {"input": {"transcription": {"model": "gpt-4o-transcribe"},
                                "turn_detection": {"type": "server_vad",
                                                   "silence_duration_ms": 400}}},
        })
        await conn.recv()
        for chunk in chunks(silence(500) + tone(1000) + silence(700)):
            await conn.input_audio_buffer.append(audio=b64(chunk))
        events = await events_until(conn, "response.done")
    by_type = {e.type: e for e in events}
    started = by_type["input_audio_buffer.speech_started"]
    stopped = by_type["input_audio_buffer.speech_stopped"]
    # Speech is 500..1500 ms; start includes 300 ms prefix padding, end the 400 ms of silence.
    assert abs(started.audio_start_ms - (500 - 300)) <= 20
    assert abs(stopped.audio_end_ms - (1500 + 400)) <= 20
    assert started.item_id == stopped.item_id == by_type["input_audio_buffer.committed"].item_id
    order = types(events)
    assert order.index("input_audio_buffer.committed") < order.index("response.created")
    completed = by_type["conversation.item.input_audio_transcription.completed"]
    assert completed.transcript == "what is the weather in Paris"
    assert completed.usage.type == "tokens"
    call = by_type["response.function_call_arguments.done"]
    assert call.name == "get_weather"
    assert json.loads(call.arguments) == {"city": "example", "days": 1}


async def test_function_call_turn(client: AsyncOpenAI) -> None:
    async with client.realtime.connect(model="gpt-realtime") as conn:
        await conn.recv()
        await conn.session.update(session={"type": "realtime", "output_modalities": ["text"],
                                           "tools": [WEATHER_TOOL]})  # type: ignore[list-item]
        await conn.recv()
        await conn.conversation.item.create(item={
            "type": "message", "role": "user",
            "content": [{"type": "input_text", "text": "What's the weather like?"}]})
        await conn.response.create()
        events = await events_until(conn, "response.done")
        added = [e for e in events if e.type == "response.output_item.added"][0].item
        assert added.type == "function_call" and added.arguments == ""
        deltas = [e for e in events if e.type == "response.function_call_arguments.delta"]
        done = [e for e in events if e.type == "response.function_call_arguments.done"][0]
        assert {e.call_id for e in deltas} == {done.call_id} == {added.call_id}
        assert "".join(e.delta for e in deltas) == done.arguments
        assert events[-1].response.output[0].type == "function_call"
        await conn.conversation.item.create(item={
            "type": "function_call_output", "call_id": done.call_id, "output": '{"temp": 21}'})
        await events_until(conn, "conversation.item.done")
        await conn.response.create()
        reply = await events_until(conn, "response.done")
    text = [e for e in reply if e.type == "response.output_text.done"][0].text
    assert text == 'The tool returned: {"temp": 21}'


async def test_barge_in_cancels_with_turn_detected_then_truncate(
    emulator: Emulator, client: AsyncOpenAI
) -> None:
    # The first reply stalls after three audio chunks, so speech arrives while it is active.
    emulator.script = parse_script(
        "rules: [{when: {turn: 1}, say: one two three four five six, stall_ms: 60000,"
        " after_chunks: 3}]"
    )
    async with client.realtime.connect(model="gpt-realtime") as conn:
        await conn.recv()
        await conn.conversation.item.create(item={
            "type": "message", "role": "user", "content": [{"type": "input_text", "text": "hi"}]})
        await conn.response.create()
        head = await events_until(conn, "response.output_audio.delta")
        head += await events_until(conn, "response.output_audio.delta")
        head += await events_until(conn, "response.output_audio.delta")
        item_id = head[-1].item_id
        heard = sum(len(base64.b64decode(e.delta)) for e in head
                    if e.type == "response.output_audio.delta") // 48
        for chunk in chunks(tone(300) + silence(400)):
            await conn.input_audio_buffer.append(audio=b64(chunk))
        cancelled = await events_until(conn, "response.done")
        assert cancelled[0].type == "input_audio_buffer.speech_started"
        assert cancelled[-1].response.status == "cancelled"
        assert cancelled[-1].response.status_details.reason == "turn_detected"
        closed = [e for e in cancelled if e.type == "response.output_item.done"][0]
        assert closed.item.status == "incomplete"
        await conn.conversation.item.truncate(item_id=item_id, content_index=0,
                                              audio_end_ms=heard + 500)
        too_far = await events_until(conn, "error")
        assert too_far[-1].error.code == "invalid_value"
        await conn.conversation.item.truncate(item_id=item_id, content_index=0,
                                              audio_end_ms=heard - 20)
        truncated = await events_until(conn, "conversation.item.truncated")
        assert truncated[-1].audio_end_ms == heard - 20
        # The user's interrupting turn still gets its own (default) reply.
        nxt = await events_until(conn, "response.done")
        assert nxt[-1].response.status == "completed"
        await conn.conversation.item.retrieve(item_id=item_id)
        retrieved = (await events_until(conn, "conversation.item.retrieved"))[-1].item
    assert len(base64.b64decode(retrieved.content[0].audio)) == (heard - 20) * 48
    assert retrieved.content[0].transcript == "one"


async def test_response_cancel_and_one_active_response(
    emulator: Emulator, client: AsyncOpenAI
) -> None:
    emulator.script = parse_script("rules: [{when: {turn: 1}, stall_ms: 60000}]")
    async with client.realtime.connect(model="gpt-realtime") as conn:
        await conn.recv()
        await conn.response.cancel()
        idle = (await conn.recv()).model_dump()
        assert idle["error"]["code"] == "response_cancel_not_active"
        await conn.response.create()
        created = (await events_until(conn, "response.created"))[-1].response
        await conn.response.create()
        busy = await events_until(conn, "error")
        assert busy[-1].error.code == "conversation_already_has_active_response"
        assert created.id in busy[-1].error.message
        await conn.response.cancel()
        done = (await events_until(conn, "response.done"))[-1].response
        assert done.status == "cancelled" and done.status_details.reason == "client_cancelled"
        assert done.output == []


async def test_items_create_retrieve_delete(client: AsyncOpenAI) -> None:
    async with client.realtime.connect(model="gpt-realtime") as conn:
        await conn.recv()
        message = {"type": "message", "role": "user",
                   "content": [{"type": "input_text", "text": "first"}]}
        await conn.conversation.item.create(item={**message, "id": "item_a"})  # type: ignore[arg-type]
        await events_until(conn, "conversation.item.done")
        await conn.conversation.item.create(item={**message, "id": "item_b"},  # type: ignore[arg-type]
                                            previous_item_id="root")
        added = (await events_until(conn, "conversation.item.done"))[0]
        assert added.previous_item_id is None
        await conn.conversation.item.create(item=message, previous_item_id="nope")  # type: ignore[arg-type]
        assert (await conn.recv()).error.code == "previous_item_not_found"  # type: ignore[union-attr]
        await conn.conversation.item.retrieve(item_id="item_a")
        assert (await conn.recv()).item.id == "item_a"  # type: ignore[union-attr]
        await conn.conversation.item.delete(item_id="item_a")
        assert (await conn.recv()).type == "conversation.item.deleted"
        await conn.conversation.item.retrieve(item_id="item_a")
        assert (await conn.recv()).error.code == "item_not_found"  # type: ignore[union-attr]
        await conn.conversation.item.create(item={
            "type": "message", "role": "assistant",
            "content": [{"type": "output_audio", "transcript": "x"}]})
        assert (await conn.recv()).error.code == "invalid_value"  # type: ignore[union-attr]


async def test_bad_client_input_gets_error_events_and_the_session_survives(
    client: AsyncOpenAI,
) -> None:
    async with client.realtime.connect(model="gpt-realtime") as conn:
        await conn.recv()
        await conn.send_raw("this is not json")
        assert (await conn.recv()).error.code == "invalid_json"  # type: ignore[union-attr]
        await conn.send_raw(json.dumps({"type": "response.explode", "event_id": "evt_9"}))
        unknown = (await conn.recv()).model_dump()
        assert unknown["error"]["code"] == "invalid_value" and unknown["error"]["param"] == "type"
        assert unknown["error"]["event_id"] == "evt_9"
        await conn.send_raw(json.dumps({"type": "input_audio_buffer.commit", "extra": 1}))
        assert (await conn.recv()).error.code == "unknown_parameter"  # type: ignore[union-attr]
        await conn.send_raw(json.dumps({"type": "input_audio_buffer.append", "audio": "%%%"}))
        assert (await conn.recv()).error.code == "invalid_value"  # type: ignore[union-attr]
        await conn.send_raw(json.dumps({"type": "conversation.item.create"}))
        assert (await conn.recv()).error.code == "missing_required_parameter"  # type: ignore[union-attr]
        await conn.session.update(session={"type": "realtime", "instructions": "still here"})
        assert (await conn.recv()).type == "session.updated"


async def test_g711_output_when_the_session_asks(client: AsyncOpenAI) -> None:
    from flowspec.audio import ulaw_decode

    async with client.realtime.connect(model="gpt-realtime") as conn:
        await conn.recv()
        await conn.session.update(session={"type": "realtime", "audio": {
            "input": {"format": {"type": "audio/pcmu"}, "turn_detection": None},
            "output": {"format": {"type": "audio/pcmu"}}}})
        await conn.recv()
        await conn.conversation.item.create(item={
            "type": "message", "role": "user", "content": [{"type": "input_text", "text": "ok"}]})
        await conn.response.create()
        events = await events_until(conn, "response.done")
    audio = b"".join(base64.b64decode(e.delta) for e in events
                     if e.type == "response.output_audio.delta")
    transcript = [e for e in events if e.type == "response.output_audio_transcript.done"]
    assert len(audio) == voice.duration_ms(transcript[0].transcript) * 8
    assert rms(ulaw_decode(audio)) > 0.02
    assert events[-1].response.audio.output.format.type == "audio/pcmu"
