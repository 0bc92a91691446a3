"""The line a phone caller hears when the bot cannot take the call: the built-in recording, a
spec's own WAV file, and how it is played on a Twilio stream (over an in-memory socket)."""

from __future__ import annotations

import asyncio
import base64
import functools
import logging
from pathlib import Path

import numpy as np
import pytest

from flowspec.audio import PCMU, AudioFormat, convert, ulaw_decode, write_wav
from flowspec.frames import EndFrame
from flowspec.spec.models.transports import TwilioTransportSpec
from flowspec.transports.twilio import TwilioTransport
from flowspec.transports.unavailable import (
    CHUNK_BYTES,
    MARK,
    MAX_LINE_S,
    builtin_line,
    could_not_go_on,
    line_audio,
    say_unavailable,
)
from flowspec.transports.wire import Connection, MemorySocket, MemorySocketPair

from .conftest import echo_session
from .test_twilio import start_message


def loudness(ulaw: bytes) -> float:
    samples = np.frombuffer(ulaw_decode(ulaw), np.int16).astype(np.float64)
    return float(np.sqrt(np.mean(samples ** 2)))


def test_the_builtin_line_is_a_few_seconds_of_speech() -> None:
    line = builtin_line()
    assert 3.0 < PCMU.duration_ms(len(line)) / 1000 < 7.0
    assert loudness(line) > 1000  # speech, not silence (μ-law silence decodes to about 0)


def test_only_a_bot_that_could_not_go_on_is_unavailable() -> None:
    assert could_not_go_on("llm: The model connection could not be restored: refused")
    assert could_not_go_on("llm: The model could not be used: HTTP 401")
    assert could_not_go_on("node 'llm' failed: node 'llm': cannot reconnect")
    for reason in ("call ended", "Twilio closed the stream", "end_call", "idle",
                   "server shutting down", "cancelled", ""):
        assert not could_not_go_on(reason), reason


def test_a_wav_file_is_played_as_mulaw(tmp_path: Path) -> None:
    path = tmp_path / "sorry.wav"
    tone = (np.sin(np.arange(16000) * 2 * np.pi * 440 / 16000) * 8000).astype("<i2")
    write_wav(path, AudioFormat("pcm16", 16000, 1), tone.tobytes())
    audio = line_audio(str(path))
    assert len(audio) == 8000 and loudness(audio) > 1000  # one second at 8 kHz


def test_a_file_that_cannot_be_played_leaves_the_builtin_line(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    (tmp_path / "bad.wav").write_bytes(b"not a wav")
    with caplog.at_level(logging.WARNING):
        assert line_audio(str(tmp_path / "missing.wav")) == builtin_line()
        assert line_audio(str(tmp_path / "bad.wav")) == builtin_line()
    assert len(caplog.records) == 2 and "built-in line" in caplog.records[0].getMessage()


def test_a_long_file_is_cut(tmp_path: Path) -> None:
    path = tmp_path / "long.wav"
    write_wav(path, AudioFormat("pcm16", 8000, 1), b"\x10\x00" * int(8000 * (MAX_LINE_S + 5)))
    assert len(line_audio(str(path))) == int(MAX_LINE_S * 8000)


async def received(client: MemorySocket) -> list[dict[str, object]]:
    """What the server sent on `client`'s stream, up to the unavailable line's mark."""
    messages: list[dict[str, object]] = []
    async with asyncio.timeout(5):
        while not messages or messages[-1]["event"] != "mark":
            messages.append(await client.receive_json())
    return messages


async def test_the_line_goes_out_in_chunks_then_a_mark_and_waits_for_its_echo() -> None:
    pair = MemorySocketPair()
    audio = convert(b"\x00\x10" * 8000, AudioFormat("pcm16", 8000), PCMU)  # one second
    await pair.client.send_json({"event": "connected", "protocol": "Call", "version": "1.0.0"})
    await pair.client.send_text("not json")  # dropped: nothing changes what is played
    await pair.client.send_json(start_message("MZ9"))
    playing = asyncio.ensure_future(say_unavailable(pair.server, audio))
    messages = await received(pair.client)
    media, mark = messages[:-1], messages[-1]
    assert all(m["event"] == "media" and m["streamSid"] == "MZ9" for m in media)
    payloads = [base64.b64decode(m["media"]["payload"]) for m in media]  # type: ignore[index]
    assert b"".join(payloads) == audio and {len(p) for p in payloads} == {CHUNK_BYTES}
    assert mark == {"event": "mark", "streamSid": "MZ9", "mark": {"name": MARK}}
    await asyncio.sleep(0.05)
    assert not playing.done()  # the line is still playing on the phone
    await pair.client.send_json({"event": "mark", "streamSid": "MZ9", "mark": {"name": MARK}})
    async with asyncio.timeout(1):
        assert await playing


async def test_a_stream_that_never_started_hears_nothing(
        monkeypatch: pytest.MonkeyPatch) -> None:
    pair = MemorySocketPair()
    await pair.client.send_json({"event": "stop", "streamSid": "MZ9", "stop": {}})
    assert not await say_unavailable(pair.server, builtin_line())
    monkeypatch.setattr("flowspec.transports.unavailable.START_WAIT_S", 0.05)
    assert not await say_unavailable(MemorySocketPair().server, builtin_line())


async def test_a_caller_who_hangs_up_ends_the_wait() -> None:
    pair = MemorySocketPair()
    playing = asyncio.ensure_future(say_unavailable(pair.server, builtin_line(), "MZ9"))
    await received(pair.client)
    await pair.client.send_json({"event": "stop", "streamSid": "MZ9", "stop": {}})
    async with asyncio.timeout(1):
        assert await playing


@pytest.mark.parametrize(("reason", "closed"), [
    ("call ended", True), ("llm: The model could not be used: HTTP 401", False)])
async def test_the_transport_leaves_a_failed_call_open_for_the_line(reason: str,
                                                                    closed: bool) -> None:
    pair = MemorySocketPair()
    spec = TwilioTransportSpec.model_validate({"type": "transport.twilio"})
    make = functools.partial(TwilioTransport, connection=Connection(socket=pair.server))
    async with echo_session(spec, make) as (session, _llm):
        await pair.client.send_json(start_message())
        await session.send("llm", EndFrame(reason=reason))
        await session.wait()
    assert pair.server.closed is closed
