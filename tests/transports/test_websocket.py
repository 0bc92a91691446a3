"""The browser protocol, driven over an in-memory socket."""

from __future__ import annotations

import functools

from flowspec.frames import (
    AudioFrame,
    BotSpeechEndedFrame,
    BotSpeechStartedFrame,
    InterruptFrame,
    PlaybackProgressFrame,
    TextFrame,
)
from flowspec.spec.models.transports import WebsocketTransportSpec
from flowspec.testing import until
from flowspec.transports.websocket import WebsocketTransport
from flowspec.transports.wire import CLOSE_TOO_BIG, Connection, MemorySocketPair

from .conftest import echo_session

SPEC = WebsocketTransportSpec.model_validate(
    {"type": "transport.websocket", "audio": {"sample_rate": 16000}, "max_message_bytes": 4096})


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def transport(pair: MemorySocketPair, clock: FakeClock | None = None) -> functools.partial[
        WebsocketTransport]:
    connection = Connection(socket=pair.server, spec_name="demo", spec_version=3)
    return functools.partial(WebsocketTransport, connection=connection,
                             clock=clock or FakeClock())


async def test_greets_with_spec_and_audio_format() -> None:
    pair = MemorySocketPair()
    async with echo_session(SPEC, transport(pair)) as (session, _llm):
        hello = await pair.client.receive_json()
        assert hello == {"type": "session.started", "session_id": session.id,
                         "spec": {"name": "demo", "version": 3},
                         "audio": {"encoding": "pcm16", "sample_rate": 16000, "channels": 1}}


async def test_audio_both_ways_with_item_marker() -> None:
    pair = MemorySocketPair()
    async with echo_session(SPEC, transport(pair)) as (_session, llm):
        await pair.client.receive_json()
        await pair.client.send_bytes(b"\x01\x00" * 160 + b"\x07")  # 10 ms and half a sample
        await pair.client.send_bytes(b"\x00")
        assert await pair.client.receive_json() == {"type": "audio.started", "item_id": "item_1"}
        assert await pair.client.receive() == b"\x01\x00" * 160
        assert await pair.client.receive() == b"\x07\x00"  # the carried byte completed a sample
        frames = llm.of(AudioFrame)
        assert [(f.sample_rate, f.encoding, f.timestamp_ms) for f in frames] == [
            (16000, "pcm16", 0.0), (16000, "pcm16", 10.0)]
        await until(lambda: llm.of(BotSpeechStartedFrame))


async def test_text_round_trip() -> None:
    pair = MemorySocketPair()
    async with echo_session(SPEC, transport(pair)) as (_session, llm):
        await pair.client.receive_json()
        await pair.client.send_json({"type": "text", "text": "hello"})
        kinds = [await pair.client.receive_json() for _ in range(5)]
        assert [m["type"] for m in kinds] == ["response.started", "transcript", "text", "text",
                                              "response.ended"]
        assert kinds[1] == {"type": "transcript", "role": "user", "text": "hello",
                            "final": True, "item_id": None}
        assert "".join(m["text"] for m in kinds if m["type"] == "text") == "echo: hello"
        assert [f.text for f in llm.of(TextFrame)] == ["hello"]


async def test_bad_messages_get_errors_and_the_session_goes_on() -> None:
    pair = MemorySocketPair()
    async with echo_session(SPEC, transport(pair)) as (_session, _llm):
        await pair.client.receive_json()
        for bad, code in [("not json", "invalid_json"), ("[1]", "invalid_message"),
                          ('{"type": "dance"}', "unknown_type"),
                          ('{"type": "text", "text": 5}', "invalid_message"),
                          ('{"type": "playback", "played_ms": "x"}', "invalid_message")]:
            await pair.client.send_text(bad)
            reply = await pair.client.receive_json()
            assert reply["type"] == "error" and reply["code"] == code, bad
        await pair.client.send_json({"type": "ping"})
        assert await pair.client.receive_json() == {"type": "pong"}


async def test_oversize_message_closes_with_1009_and_ends_the_session() -> None:
    pair = MemorySocketPair()
    async with echo_session(SPEC, transport(pair)) as (session, _llm):
        await pair.client.receive_json()
        await pair.client.send_bytes(bytes(5000))
        await session.wait()
    assert pair.client.close_code == CLOSE_TOO_BIG
    assert session.close_reason == "client message too big"


async def test_interrupt_clears_and_reports_the_played_position() -> None:
    pair = MemorySocketPair()
    clock = FakeClock()
    async with echo_session(SPEC, transport(pair, clock)) as (session, llm):
        await pair.client.receive_json()
        for _ in range(8):
            await pair.client.send_bytes(bytes(4000))  # one second of audio, echoed back
        await pair.client.receive_json()
        await pair.client.send_json({"type": "playback", "item_id": "item_1", "played_ms": 300,
                                     "playing": True})
        await until(lambda: pair.server._inbox.empty())
        clock.now += 0.2  # playback went on for 200 ms since that report
        await session.send("llm", InterruptFrame())
        assert await pair.client.receive_json() == {"type": "audio.clear", "item_id": "item_1"}
        await until(lambda: llm.of(PlaybackProgressFrame))
        [progress] = llm.of(PlaybackProgressFrame)
        assert progress == PlaybackProgressFrame(item_id="item_1", played_ms=500)
        assert llm.of(BotSpeechEndedFrame) == [BotSpeechEndedFrame(item_id="item_1")]
        # A second interrupt with nothing playing reports nothing more.
        await session.send("llm", InterruptFrame())
        await pair.client.send_json({"type": "ping"})
        assert await pair.client.receive_json() == {"type": "pong"}
        assert len(llm.of(PlaybackProgressFrame)) == 1


async def test_played_position_never_exceeds_what_was_sent() -> None:
    pair = MemorySocketPair()
    clock = FakeClock()
    async with echo_session(SPEC, transport(pair, clock)) as (session, llm):
        await pair.client.receive_json()
        await pair.client.send_bytes(bytes(3200))  # 100 ms
        await pair.client.receive_json()
        clock.now += 5
        await session.send("llm", InterruptFrame())
        await until(lambda: llm.of(PlaybackProgressFrame))
        assert llm.of(PlaybackProgressFrame)[0].played_ms == 100


async def test_client_reporting_the_end_of_playback_ends_bot_speech() -> None:
    pair = MemorySocketPair()
    async with echo_session(SPEC, transport(pair)) as (_session, llm):
        await pair.client.receive_json()
        await pair.client.send_bytes(bytes(3200))
        await pair.client.receive_json()
        await pair.client.send_json({"type": "playback", "item_id": "item_1", "played_ms": 100,
                                     "playing": False})
        await until(lambda: llm.of(BotSpeechEndedFrame))


async def test_the_page_reporting_whole_milliseconds_of_a_fractional_length_ends_bot_speech(
        ) -> None:
    pair = MemorySocketPair()
    async with echo_session(SPEC, transport(pair)) as (_session, llm):
        await pair.client.receive_json()
        await pair.client.send_bytes(bytes(3202))  # 1,601 samples: 100.0625 ms
        await pair.client.receive_json()
        await pair.client.send_json({"type": "playback", "item_id": "item_1", "played_ms": 100,
                                     "playing": False})
        await until(lambda: llm.of(BotSpeechEndedFrame))


async def test_end_message_ends_the_session_and_closes() -> None:
    pair = MemorySocketPair()
    async with echo_session(SPEC, transport(pair)) as (session, _llm):
        await pair.client.receive_json()
        await pair.client.send_json({"type": "end"})
        await session.wait()
    assert session.close_reason == "client ended the session"
    assert (await pair.client.receive_json())["type"] == "session.ended"
    assert await pair.client.receive() is None


async def test_client_disconnect_ends_the_session() -> None:
    pair = MemorySocketPair()
    async with echo_session(SPEC, transport(pair)) as (session, _llm):
        await pair.client.close()
        await session.wait()
    assert session.close_reason == "client disconnected"


async def test_without_a_connection_it_is_a_silent_sink() -> None:
    async with echo_session(SPEC, WebsocketTransport) as (session, llm):
        await session.send("caller", TextFrame(text="hi", role="user"))
        assert llm.of(TextFrame)


async def test_an_interrupt_from_the_client_reaches_the_model_and_a_commit_ends_the_turn(
) -> None:
    from flowspec.frames import CommitInputFrame

    pair = MemorySocketPair()
    async with echo_session(SPEC, transport(pair)) as (_session, llm):
        await pair.client.receive_json()
        await pair.client.send_json({"type": "interrupt"})
        await pair.client.send_json({"type": "commit"})
        await until(lambda: llm.of(CommitInputFrame))
        assert len(llm.of(InterruptFrame)) == 1


async def test_camera_frames_become_images_only_when_video_is_enabled() -> None:
    import base64

    from flowspec.frames import ImageFrame

    jpeg = b"\xff\xd8\xff\xe0jpeg"
    message = {"type": "image", "mime_type": "image/jpeg",
               "data": base64.b64encode(jpeg).decode()}
    pair = MemorySocketPair()
    async with echo_session(SPEC, transport(pair)) as (_session, llm):
        await pair.client.receive_json()
        await pair.client.send_json(message)
        refused = await pair.client.receive_json()
        assert refused["type"] == "error" and refused["code"] == "video_off"
        assert not llm.of(ImageFrame)
    video = WebsocketTransportSpec.model_validate(
        {"type": "transport.websocket", "video": {"enabled": True, "fps": 1}})
    pair = MemorySocketPair()
    async with echo_session(video, transport(pair)) as (_session, llm):
        await pair.client.receive_json()
        await pair.client.send_json({**message, "data": "%%%"})
        assert (await pair.client.receive_json())["code"] == "invalid_message"
        await pair.client.send_json(message)
        await until(lambda: llm.of(ImageFrame))
        assert llm.of(ImageFrame) == [ImageFrame(image=jpeg, mime_type="image/jpeg")]
