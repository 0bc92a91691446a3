"""Realtime transcription sessions (`?intent=transcription`) driven by the official SDK's
realtime clients, GA and beta: every event either side sends validates against the SDK's models
(the server's on the fixture's teardown, the client's here) with no unknown fields."""

from __future__ import annotations

from typing import Any, Literal

from openai import AsyncOpenAI
from openai.types.realtime import RealtimeTranscriptionSessionCreateRequestParam

from flowspec.emulator import Emulator, parse_script
from flowspec.emulator.records import ConnectionRecord

from .conformance import check_client
from .helpers import b64, chunks, events_until, silence, tone, types

TRANSCRIPTION = {"intent": "transcription"}
LOGPROBS: Literal["item.input_audio_transcription.logprobs"] = (
    "item.input_audio_transcription.logprobs")


def check_clients(emulator: Emulator) -> list[ConnectionRecord]:
    records = emulator.of_kind("transcription")
    assert records
    for record in records:
        assert record.query["intent"] == "transcription"
        assert record.received
        for event in record.received:
            check_client(record.dialect, event)
    return records


async def recv(connection: Any) -> Any:
    """The next server event, as the SDK parsed it (typed loosely: tests read its fields)."""
    return await connection.recv()


def by_type(events: list[Any]) -> dict[str, Any]:
    return {event.type: event for event in events}


async def test_ga_server_vad_turn_is_transcribed_word_by_word(
    emulator: Emulator, client: AsyncOpenAI
) -> None:
    emulator.script = parse_script("audio_transcripts: [what is the weather in Paris]")
    async with client.realtime.connect(extra_query=TRANSCRIPTION) as conn:
        created = await recv(conn)
        assert created.type == "session.created"
        assert created.session.type == "transcription"
        assert created.session.audio.input.transcription is None  # nothing is transcribed yet
        session: RealtimeTranscriptionSessionCreateRequestParam = {
            "type": "transcription",
            "audio": {"input": {
                "format": {"type": "audio/pcm", "rate": 24000},
                "transcription": {"model": "gpt-4o-transcribe", "language": "en",
                                  "prompt": "Cities of Europe."},
                "noise_reduction": {"type": "near_field"},
                "turn_detection": {"type": "server_vad", "silence_duration_ms": 400}}},
            "include": [LOGPROBS],
        }
        await conn.session.update(session=session)
        updated = await recv(conn)
        assert updated.type == "session.updated"
        effective = updated.session.model_dump()
        assert effective["audio"]["input"]["transcription"]["model"] == "gpt-4o-transcribe"
        assert effective["audio"]["input"]["transcription"]["prompt"] == "Cities of Europe."
        assert effective["audio"]["input"]["noise_reduction"]["type"] == "near_field"
        assert effective["audio"]["input"]["turn_detection"]["silence_duration_ms"] == 400
        assert effective["include"] == [LOGPROBS]
        for chunk in chunks(silence(500) + tone(1000) + silence(700)):
            await conn.input_audio_buffer.append(audio=b64(chunk))
        events = await events_until(conn, "conversation.item.input_audio_transcription.completed")
    assert types(events) == [
        "input_audio_buffer.speech_started", "input_audio_buffer.speech_stopped",
        "input_audio_buffer.committed",
        *["conversation.item.input_audio_transcription.delta"] * 6,
        "conversation.item.input_audio_transcription.completed",
    ]
    found = by_type(events)
    started, stopped = found["input_audio_buffer.speech_started"], found[
        "input_audio_buffer.speech_stopped"]
    assert abs(started.audio_start_ms - (500 - 300)) <= 20  # the prefix padding
    assert abs(stopped.audio_end_ms - (1500 + 400)) <= 20
    item = started.item_id
    assert stopped.item_id == found["input_audio_buffer.committed"].item_id == item
    deltas = [e for e in events if e.type.endswith("transcription.delta")]
    assert {e.item_id for e in deltas} == {item}
    assert "".join(e.delta for e in deltas) == "what is the weather in Paris"
    assert all(e.logprobs and e.logprobs[0].token == e.delta.strip() for e in deltas)
    done = found["conversation.item.input_audio_transcription.completed"]
    assert done.item_id == item and done.content_index == 0
    assert done.transcript == "what is the weather in Paris"
    assert done.usage.type == "tokens" and done.usage.total_tokens == (
        done.usage.input_tokens + done.usage.output_tokens)
    assert [p.token for p in done.logprobs] == done.transcript.split()
    (record,) = check_clients(emulator)
    assert record.dialect == "ga" and record.headers["Authorization"] == "Bearer test-key"
    assert not record.sent_of("response.created")  # a transcription session never answers


async def test_ga_manual_turns_commit_clear_and_refuse_a_short_buffer(
    emulator: Emulator, client: AsyncOpenAI
) -> None:
    async with client.realtime.connect(extra_query=TRANSCRIPTION) as conn:
        await recv(conn)
        await conn.session.update(session={"type": "transcription", "audio": {"input": {
            "transcription": {"model": "gpt-4o-mini-transcribe"}, "turn_detection": None}}})
        updated = await recv(conn)
        assert updated.session.audio.input.turn_detection is None
        await conn.input_audio_buffer.append(audio=b64(tone(60)))
        await conn.input_audio_buffer.commit()
        short = await recv(conn)
        assert short.type == "error" and short.error.code == "input_audio_buffer_commit_empty"
        await conn.input_audio_buffer.clear()
        assert (await recv(conn)).type == "input_audio_buffer.cleared"
        for chunk in chunks(tone(1500)):  # no VAD: nothing happens until the commit
            await conn.input_audio_buffer.append(audio=b64(chunk))
        await conn.input_audio_buffer.commit()
        first = await events_until(conn, "conversation.item.input_audio_transcription.completed")
        for chunk in chunks(tone(500)):
            await conn.input_audio_buffer.append(audio=b64(chunk))
        await conn.input_audio_buffer.commit()
        second = await events_until(conn, "conversation.item.input_audio_transcription.completed")
    assert types(first)[0] == "input_audio_buffer.committed"
    assert "input_audio_buffer.speech_started" not in types(first)
    assert first[-1].transcript == "(1.5 seconds of audio)"  # no script: the audio described
    assert second[0].previous_item_id == first[0].item_id
    assert second[-1].transcript == "(0.5 seconds of audio)"
    check_clients(emulator)


async def test_ga_refuses_realtime_sessions_and_bad_fields_whole(
    emulator: Emulator, client: AsyncOpenAI
) -> None:
    async with client.realtime.connect(extra_query=TRANSCRIPTION) as conn:
        await recv(conn)
        await conn.session.update(session={"type": "realtime", "instructions": "Talk."})
        realtime = await recv(conn)
        assert realtime.type == "error" and realtime.error.param == "session.type"
        await conn.session.update(session={"type": "transcription", "audio": {"input": {
            "noise_reduction": {"type": "near_field"},
            "transcription": {"model": "gpt-4-nope"}}}})
        model = await recv(conn)
        assert model.error.code == "invalid_value"
        assert model.error.param == "session.audio.input.transcription.model"
        await conn.session.update(session={"type": "transcription"})
        after = await recv(conn)
        # The refused update changed nothing, not even its valid part.
        assert after.type == "session.updated"
        assert after.session.audio.input.noise_reduction is None
        await conn.send({"type": "response.create"})
        unknown = await recv(conn)
        assert unknown.type == "error" and unknown.error.type == "invalid_request_error"
    (record,) = emulator.of_kind("transcription")
    assert [e["type"] for e in record.sent] == [
        "session.created", "error", "error", "session.updated", "error"]


async def test_beta_dialect_configures_first_and_echoes_its_own_model(
    emulator: Emulator, client: AsyncOpenAI
) -> None:
    emulator.script = parse_script("audio_transcripts: [book a table for two]")
    async with client.beta.realtime.connect(model="gpt-4o-transcribe",
                                            extra_query=TRANSCRIPTION) as conn:
        await conn.transcription_session.update(session={
            "input_audio_format": "pcm16",
            "input_audio_transcription": {"model": "gpt-4o-transcribe", "language": "en"},
            "input_audio_noise_reduction": {"type": "far_field"},
            "turn_detection": {"type": "server_vad", "silence_duration_ms": 300},
            "include": [LOGPROBS],
        })
        updated = await recv(conn)  # the beta server announces nothing before this
        assert updated.type == "transcription_session.updated"
        assert updated.session.input_audio_transcription.model == "gpt-4o-transcribe"
        assert updated.session.turn_detection.silence_duration_ms == 300
        for chunk in chunks(silence(300) + tone(800) + silence(500)):
            await conn.input_audio_buffer.append(audio=b64(chunk))
        events = await events_until(conn, "conversation.item.input_audio_transcription.completed")
        await conn.session.update(session={"modalities": ["text"]})
        wrong = await recv(conn)
        assert wrong.type == "error" and "transcription_session.update" in wrong.error.message
    assert types(events)[:3] == ["input_audio_buffer.speech_started",
                                 "input_audio_buffer.speech_stopped",
                                 "input_audio_buffer.committed"]
    assert events[-1].transcript == "book a table for two"
    (record,) = check_clients(emulator)
    assert record.dialect == "beta" and record.headers["OpenAI-Beta"] == "realtime=v1"
    assert record.sent[0]["type"] == "transcription_session.updated"


async def test_beta_whisper_sends_the_whole_text_at_once_with_duration_usage(
    emulator: Emulator, client: AsyncOpenAI
) -> None:
    async with client.beta.realtime.connect(model="whisper-1", extra_query=TRANSCRIPTION) as conn:
        await conn.transcription_session.update(session={
            "input_audio_transcription": {"model": "whisper-1"},
            "turn_detection": None})  # type: ignore[typeddict-item]  # the API takes null
        assert (await recv(conn)).session.turn_detection is None
        for chunk in chunks(tone(700)):
            await conn.input_audio_buffer.append(audio=b64(chunk))
        await conn.input_audio_buffer.commit()
        events = await events_until(conn, "conversation.item.input_audio_transcription.completed")
    assert types(events) == ["input_audio_buffer.committed",
                             "conversation.item.input_audio_transcription.delta",
                             "conversation.item.input_audio_transcription.completed"]
    assert events[1].delta == events[2].transcript == "(0.7 seconds of audio)"
    usage = events[2].usage
    assert usage.type == "duration" and abs(usage.seconds - 0.7) < 0.01
    check_clients(emulator)


async def test_beta_refuses_a_model_it_never_had(emulator: Emulator, client: AsyncOpenAI) -> None:
    async with client.beta.realtime.connect(model="x", extra_query=TRANSCRIPTION) as conn:
        await conn.send({"type": "transcription_session.update",  # type: ignore[arg-type]
                         "session": {"input_audio_transcription": {
                             "model": "gpt-realtime-whisper"}}})
        refused = await recv(conn)
        assert refused.type == "error"
        assert refused.error.param == "session.input_audio_transcription.model"
    # The SDK's beta model knows only the three models the beta service had.
    assert refused.error.message.endswith(
        "Supported values are: 'gpt-4o-mini-transcribe', 'gpt-4o-transcribe', 'whisper-1'.")


async def test_ga_semantic_vad_finds_the_turn_by_its_eagerness(
    emulator: Emulator, client: AsyncOpenAI
) -> None:
    async with client.realtime.connect(extra_query=TRANSCRIPTION) as conn:
        await recv(conn)
        await conn.session.update(session={"type": "transcription", "audio": {"input": {
            "transcription": {"model": "gpt-4o-mini-transcribe"},
            "turn_detection": {"type": "semantic_vad", "eagerness": "high"}}}})
        updated = await recv(conn)
        assert updated.session.audio.input.turn_detection.type == "semantic_vad"
        assert updated.session.audio.input.turn_detection.eagerness == "high"
        for chunk in chunks(silence(400) + tone(900) + silence(1500)):
            await conn.input_audio_buffer.append(audio=b64(chunk))
        events = await events_until(conn, "conversation.item.input_audio_transcription.completed")
    stopped = by_type(events)["input_audio_buffer.speech_stopped"]
    assert abs(stopped.audio_end_ms - (400 + 900 + 250)) <= 20  # high: a quarter second
    assert events[-1].transcript.startswith("(") and events[-1].usage.type == "tokens"
    check_clients(emulator)
