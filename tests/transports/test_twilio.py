"""Twilio Media Streams over an in-memory socket, and the TwiML webhook helpers."""

from __future__ import annotations

import base64
import functools

from flowspec.frames import (
    AudioFrame,
    BotSpeechEndedFrame,
    DTMFFrame,
    InterruptFrame,
    PlaybackProgressFrame,
)
from flowspec.runtime import Bus
from flowspec.runtime.bus import ClientConnected, ClientMessageRejected, NodeFailed
from flowspec.spec.models.transports import TwilioTransportSpec
from flowspec.testing import capture_events, until
from flowspec.transports.twilio import (
    TwilioTransport,
    signature,
    signature_valid,
    stream_url,
    twiml,
)
from flowspec.transports.wire import Connection, MemorySocketPair

from .conftest import echo_session

SPEC = TwilioTransportSpec.model_validate({"type": "transport.twilio"})


class FakeClock:
    now = 0.0

    def __call__(self) -> float:
        return self.now


def start_message(sid: str = "MZ123") -> dict[str, object]:
    return {"event": "start", "sequenceNumber": "1", "streamSid": sid,
            "start": {"streamSid": sid, "callSid": "CA1", "accountSid": "AC1",
                      "tracks": ["inbound"], "customParameters": {"caller": "+331234"},
                      "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000,
                                      "channels": 1}}}


def media(payload: bytes, sid: str = "MZ123") -> dict[str, object]:
    return {"event": "media", "streamSid": sid,
            "media": {"track": "inbound", "chunk": "1", "timestamp": "0",
                      "payload": base64.b64encode(payload).decode()}}


def factory(pair: MemorySocketPair, clock: FakeClock, **spec: object) -> functools.partial[
        TwilioTransport]:
    return functools.partial(TwilioTransport, connection=Connection(socket=pair.server),
                             clock=clock)


async def test_media_in_and_out_with_marks() -> None:
    pair, bus = MemorySocketPair(), Bus()
    with capture_events(bus, ClientConnected) as events:
        async with echo_session(SPEC, factory(pair, FakeClock()), bus) as (_session, llm):
            await pair.client.send_json({"event": "connected", "protocol": "Call",
                                         "version": "1.0.0"})
            await pair.client.send_json(start_message())
            await pair.client.send_json(media(b"\xff" * 160))
            out = await pair.client.receive_json()
            assert out["event"] == "media" and out["streamSid"] == "MZ123"
            assert base64.b64decode(out["media"]["payload"]) == b"\xff" * 160
            mark = await pair.client.receive_json()
            assert mark["event"] == "mark" and mark["mark"]["name"].startswith("item_1:20:")
            [frame] = llm.of(AudioFrame)
            assert (frame.encoding, frame.sample_rate, frame.audio) == ("pcmu", 8000, b"\xff" * 160)
            # Twilio echoes the mark once played: the bot has finished speaking.
            await pair.client.send_json({"event": "mark", "streamSid": "MZ123",
                                         "mark": {"name": mark["mark"]["name"]}})
            await until(lambda: llm.of(BotSpeechEndedFrame))
    [connected] = events
    assert isinstance(connected, ClientConnected)
    assert connected.details["custom_parameters"] == {"caller": "+331234"}
    assert connected.details["call_sid"] == "CA1"


async def test_an_echoed_mark_after_audio_of_a_fractional_length_ends_bot_speech() -> None:
    pair = MemorySocketPair()
    async with echo_session(SPEC, factory(pair, FakeClock())) as (_session, llm):
        await pair.client.send_json(start_message())
        await pair.client.send_json(media(b"\xff" * 163))  # 20.375 ms, echoed back
        await pair.client.receive_json()
        mark = await pair.client.receive_json()
        assert mark["mark"]["name"].startswith("item_1:20:")  # named by the whole ms
        await pair.client.send_json({"event": "mark", "streamSid": "MZ123",
                                     "mark": {"name": mark["mark"]["name"]}})
        await until(lambda: llm.of(BotSpeechEndedFrame))


async def test_barge_in_sends_clear_and_reports_the_played_position() -> None:
    pair, clock = MemorySocketPair(), FakeClock()
    async with echo_session(SPEC, factory(pair, clock)) as (session, llm):
        await pair.client.send_json(start_message())
        for _ in range(5):
            await pair.client.send_json(media(b"\x7f" * 800))  # 5 × 100 ms echoed back
        marks: list[str] = []
        while len(marks) < 5:
            message = await pair.client.receive_json()
            if message["event"] == "mark":
                marks.append(message["mark"]["name"])
        # Twilio played the first two chunks, then 30 ms more went by.
        await pair.client.send_json({"event": "mark", "streamSid": "MZ123",
                                     "mark": {"name": marks[1]}})
        await until(lambda: pair.server._inbox.empty())
        clock.now += 0.03
        await session.send("llm", InterruptFrame())
        assert await pair.client.receive_json() == {"event": "clear", "streamSid": "MZ123"}
        await until(lambda: llm.of(PlaybackProgressFrame))
        assert llm.of(PlaybackProgressFrame) == [PlaybackProgressFrame(item_id="item_1",
                                                                       played_ms=230)]
        # Marks Twilio returns for the cleared audio change nothing.
        await pair.client.send_json({"event": "mark", "streamSid": "MZ123",
                                     "mark": {"name": marks[4]}})
        await pair.client.send_json({"event": "dtmf", "streamSid": "MZ123",
                                     "dtmf": {"track": "inbound_track", "digit": "5"}})
        await until(lambda: llm.of(DTMFFrame))
        assert llm.of(DTMFFrame) == [DTMFFrame(digit="5")]
        assert len(llm.of(BotSpeechEndedFrame)) == 1


async def test_no_clear_when_disabled() -> None:
    spec = TwilioTransportSpec.model_validate({"type": "transport.twilio",
                                               "clear_on_interruption": False})
    pair = MemorySocketPair()
    async with echo_session(spec, factory(pair, FakeClock())) as (session, llm):
        await pair.client.send_json(start_message())
        await pair.client.send_json(media(b"\x7f" * 160))
        await pair.client.receive_json()
        await pair.client.receive_json()
        await session.send("llm", InterruptFrame())
        await until(lambda: llm.of(PlaybackProgressFrame))
        await pair.client.send_json({"event": "stop", "streamSid": "MZ123", "stop": {}})
        await session.wait()
    assert session.close_reason == "call ended"
    while (message := await pair.client.receive()) is not None:
        assert '"clear"' not in str(message)


async def test_bad_messages_are_rejected_not_fatal() -> None:
    pair, bus = MemorySocketPair(), Bus()
    with capture_events(bus, ClientMessageRejected) as events:
        async with echo_session(SPEC, factory(pair, FakeClock()), bus) as (_session, llm):
            await pair.client.send_text("{nope")
            await pair.client.send_bytes(b"\x00\x01")
            await pair.client.send_json({"event": "media", "media": {"payload": "!!"}})
            await pair.client.send_json({"event": "start"})
            await pair.client.send_json({"event": "surprise"})
            await pair.client.send_json(start_message())
            await pair.client.send_json(media(b"\x01" * 160))
            await until(lambda: llm.of(AudioFrame))
    assert [e.code for e in events if isinstance(e, ClientMessageRejected)] == [
        "invalid_json", "invalid_message", "invalid_message", "invalid_message", "unknown_type"]


def test_twiml_and_stream_url() -> None:
    url = stream_url(None, "https", "bot.example.com", "/twilio/stream")
    assert url == "wss://bot.example.com/twilio/stream"
    assert stream_url("https://pub.example.com/", "http", "x", "/s") == "wss://pub.example.com/s"
    assert stream_url(None, "http", "127.0.0.1:8080", "/s") == "ws://127.0.0.1:8080/s"
    xml = twiml(url, {"From": "+1 <555>"})
    assert xml == ('<?xml version="1.0" encoding="UTF-8"?><Response><Connect><Stream '
                   'url="wss://bot.example.com/twilio/stream"><Parameter name="From" '
                   'value="+1 &lt;555&gt;"/></Stream></Connect></Response>')


def test_signature_matches_twilios_documented_example() -> None:
    # The example from Twilio's webhook security documentation.
    params = {"CallSid": "CA1234567890ABCDE", "Caller": "+14158675309", "Digits": "1234",
              "From": "+14158675309", "To": "+18005551212"}
    url = "https://mycompany.com/myapp.php?foo=1&bar=2"
    assert signature("12345", url, params) == "RSOYDt4T1cUTdK1PDd93/VVr8B8="
    assert signature_valid("12345", url, params, "RSOYDt4T1cUTdK1PDd93/VVr8B8=")
    assert not signature_valid("12345", url, {**params, "Digits": "9"},
                               "RSOYDt4T1cUTdK1PDd93/VVr8B8=")


async def test_messages_beyond_the_client_bounds_are_rejected_and_the_call_goes_on() -> None:
    pair, bus = MemorySocketPair(), Bus()
    with capture_events(bus, ClientMessageRejected) as events:
        async with echo_session(SPEC, factory(pair, FakeClock()), bus) as (_session, llm):
            await pair.client.send_text("[" * 30000)
            await pair.client.send_text('{"event": "mark", "n": ' + "9" * 400 + "}")
            await pair.client.send_text('{"event": "media", "n": 1e999}')
            await pair.client.send_json(start_message())
            await pair.client.send_json(media(b"\x01" * 160))
            await until(lambda: llm.of(AudioFrame))
    assert [e.code for e in events if isinstance(e, ClientMessageRejected)] == [
        "message_too_complex"] * 3


class BrokenSocket:
    """A client socket whose next read fails in a way no protocol handles."""

    closed = False

    async def receive(self) -> None:
        raise RuntimeError("the socket broke")

    async def send_text(self, text: str) -> None:
        return None

    async def send_bytes(self, data: bytes) -> None:
        return None

    async def close(self, code: int = 1000, reason: str = "") -> None:
        self.closed = True


async def test_a_receive_loop_that_fails_ends_the_call() -> None:
    bus, socket = Bus(), BrokenSocket()
    transport = functools.partial(TwilioTransport, connection=Connection(socket=socket),
                                  clock=FakeClock())
    with capture_events(bus, NodeFailed) as events:
        async with echo_session(SPEC, transport, bus) as (session, _llm):
            await session.wait()
    assert [(e.node_id, e.fatal) for e in events if isinstance(e, NodeFailed)] == [
        ("caller", True)]
    assert "the socket broke" in session.close_reason
    assert socket.closed


async def test_the_commit_key_ends_the_turn_and_the_interrupt_key_stops_the_bot() -> None:
    from flowspec.frames import CommitInputFrame

    spec = TwilioTransportSpec.model_validate(
        {"type": "transport.twilio", "commit_key": "#", "interrupt_key": "*"})
    pair, clock = MemorySocketPair(), FakeClock()
    async with echo_session(spec, factory(pair, clock)) as (_session, llm):
        await pair.client.send_json(start_message())
        for digit in ("*", "#", "5"):
            await pair.client.send_json({"event": "dtmf", "streamSid": "MZ123",
                                         "dtmf": {"track": "inbound_track", "digit": digit}})
        await until(lambda: llm.of(DTMFFrame))
        assert llm.of(DTMFFrame) == [DTMFFrame(digit="5")]  # only keys with no role go on
        assert len(llm.of(InterruptFrame)) == 1 and len(llm.of(CommitInputFrame)) == 1
