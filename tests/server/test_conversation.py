"""Calls over the served transports with a conversation: variables from the connection (the
page's query string, Twilio's stream parameters and webhook URL), refusals that touch nothing
else, and end_call hanging up only once the goodbye has been heard.

The model is the emulator. The server's conversation clock is a manual one that these tests
never move: a reply's "heard" bound (its length plus a grace) cannot run out, so a call that
ends did so because the client reported its goodbye played.
"""

from __future__ import annotations

import asyncio
import base64
import math
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import numpy as np
import pytest

from flowspec.audio import PCMU, AudioFormat, convert
from flowspec.conversation.clock import ManualClock
from flowspec.conversation.driver import said_words
from flowspec.conversation.events import CallEnding
from flowspec.emulator import Emulator
from flowspec.emulator.records import ConnectionRecord
from flowspec.server.app import Server
from flowspec.server.offline import offline_graphs
from flowspec.spec.compile import compile_file, compile_text
from flowspec.spec.compiled import CompiledGraph
from flowspec.testing import capture_events

from .conftest import running
from .test_app import metric

ROOT = Path(__file__).resolve().parents[2]
STEP = 20.0
"""The longest any one step of a call may take (a guard against hangs)."""

GREETER = """\
flowspec: 1
name: greeter
nodes:
  caller: {type: transport.websocket, audio: {encoding: pcm16, sample_rate: 24000}}
  agent:
    type: openai.realtime
    settings: {system_instruction: "You help {{customer_name}}."}
edges: [caller -> agent -> caller]
variables:
  customer_name: {default: there, maxLength: 20}
conversation:
  opening: {say: "Hello {{customer_name}}"}
  end_call: {goodbye: "Goodbye {{customer_name}}, and thank you for calling!"}
"""
PCM16_MS = 48.0
"""Bytes per millisecond of the greeter's audio (PCM16 at 24 kHz)."""

HANG_UP_ON_SPEECH = "rules: [{when: {input: audio}, call: {name: end_call}}]"
"""The emulator's model ends a phone call when the caller says anything."""


@asynccontextmanager
async def served(graph: CompiledGraph, *, script: str | None = None
                 ) -> AsyncIterator[tuple[Server, str, Emulator]]:
    async with Emulator.start(pace=0, keep_records=True) as emulator:
        if script is not None:
            emulator.load_script(script, text=True)
        async with offline_graphs([graph], {}, url=emulator.base_url) as offline:
            server = Server(offline.graphs, clock=ManualClock())
            async with running(offline.graphs, server=server) as (_server, host):
                yield server, host, emulator


def greeter() -> CompiledGraph:
    return compile_text(GREETER, env={}).raise_for_errors()


def phone_agent() -> CompiledGraph:
    return compile_file(ROOT / "specs" / "phone-agent.yaml", env={}).raise_for_errors()


def asked_words(record: ConnectionRecord) -> list[str | None]:
    """The exact words each response.create asked the model for."""
    return [said_words(str((e.get("response") or {}).get("instructions") or ""))
            for e in record.received_of("response.create")]


def spoken(record: ConnectionRecord) -> list[str]:
    return [str(e["transcript"]) for e in record.sent_of("response.output_audio_transcript.done")]


# -- a browser-protocol client ---------------------------------------------------------------


class PageClient:
    """A raw client of the browser protocol that keeps, in order, what it sent and received."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.log: list[tuple[str, str]] = []  # ("in" | "out", message type)
        self.audio: dict[str, int] = {}  # bytes of audio received, by item
        self.item = ""

    async def send(self, message: dict[str, Any]) -> None:
        self.log.append(("out", str(message["type"])))
        await self.ws.send_json(message)

    async def next(self) -> dict[str, Any] | None:
        """The next JSON message (audio is counted on the way); None once the socket closed."""
        while True:
            message = await self.ws.receive(timeout=STEP)
            if message.type is aiohttp.WSMsgType.BINARY:
                self.audio[self.item] = self.audio.get(self.item, 0) + len(message.data)
                continue
            if message.type is not aiohttp.WSMsgType.TEXT:
                self.log.append(("in", "close"))
                return None
            body: dict[str, Any] = message.json()
            self.log.append(("in", str(body["type"])))
            if body["type"] == "audio.started":
                self.item = str(body["item_id"])
            return body

    async def until(self, kind: str) -> dict[str, Any]:
        async with asyncio.timeout(STEP):
            while (message := await self.next()) is not None:
                if message["type"] == kind:
                    return message
        raise AssertionError(f"the socket closed before a {kind!r} message: {self.log}")

    async def spoken_reply(self) -> tuple[str, str]:
        """Wait for the next reply with audio to end: `(item_id, final transcript)`."""
        text = ""
        async with asyncio.timeout(STEP):
            while (message := await self.next()) is not None:
                if message["type"] == "transcript" and message["final"]:
                    text = str(message["text"])
                if message["type"] == "response.ended" and text:
                    return self.item, text
        raise AssertionError(f"the socket closed during a reply: {self.log}")

    async def played(self, item: str, played_ms: float, *, playing: bool) -> None:
        """Report playback, then wait for a pong: the server has read the report."""
        await self.send({"type": "playback", "item_id": item, "played_ms": played_ms,
                         "playing": playing})
        await self.send({"type": "ping"})
        await self.until("pong")

    def ms(self, item: str) -> float:
        return self.audio[item] / PCM16_MS


# -- a Twilio media stream ---------------------------------------------------------------------


def tone_ulaw(ms: int, amplitude: float = 0.0) -> bytes:
    """μ-law 8 kHz: a 440 Hz tone the emulator's voice detector takes for speech (or, with no
    amplitude, silence)."""
    t = np.arange(8 * ms) / 8000.0
    pcm = (amplitude * 32767 * np.sin(2 * math.pi * 440 * t)).astype("<i2").tobytes()
    return convert(pcm, AudioFormat("pcm16", 8000, 1), PCMU)


class PhoneClient:
    """A Twilio media stream: μ-law in 20 ms messages, marks echoed as Twilio echoes them."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.log: list[tuple[str, str]] = []  # ("in" | "out", event [: mark name])
        self.media_ms = 0.0
        self.media = 0  # media messages received

    async def start(self, parameters: dict[str, str]) -> None:
        await self.ws.send_json({"event": "connected", "protocol": "Call", "version": "1.0.0"})
        await self.ws.send_json({"event": "start", "sequenceNumber": "1", "streamSid": "MZ1",
                                 "start": {"streamSid": "MZ1", "callSid": "CA1",
                                           "customParameters": parameters,
                                           "mediaFormat": {"encoding": "audio/x-mulaw",
                                                           "sampleRate": 8000, "channels": 1}}})

    async def say(self, audio: bytes) -> None:
        for offset in range(0, len(audio), 160):
            payload = base64.b64encode(audio[offset:offset + 160]).decode()
            await self.ws.send_json({"event": "media", "streamSid": "MZ1",
                                     "media": {"track": "inbound", "payload": payload}})

    async def take(self, *, until_media: int | None = None, echo: bool = True) -> list[str]:
        """Take what the server sends until `until_media` media messages (in all) arrived with
        their marks, or (None) until the socket closes. With `echo`, each mark is echoed at
        once (its audio counts as played); without, the marks are returned, unechoed."""
        held: list[str] = []
        async with asyncio.timeout(STEP):
            while True:
                message = await self.ws.receive()
                if message.type is not aiohttp.WSMsgType.TEXT:
                    self.log.append(("in", "close"))
                    if until_media is None:
                        return held
                    raise AssertionError(f"the stream closed early: {self.log[-5:]}")
                body = message.json()
                event = str(body["event"])
                if event == "media":
                    self.media_ms += len(base64.b64decode(body["media"]["payload"])) / 8
                    self.media += 1
                    self.log.append(("in", "media"))
                elif event == "mark":
                    name = str(body["mark"]["name"])
                    self.log.append(("in", f"mark:{name}"))
                    if echo:
                        await self.echo(name)
                    else:
                        held.append(name)
                    if until_media is not None and self.media >= until_media:
                        return held
                else:
                    self.log.append(("in", event))

    async def echo(self, name: str) -> None:
        await self.ws.send_json({"event": "mark", "sequenceNumber": "2", "streamSid": "MZ1",
                                 "mark": {"name": name}})
        self.log.append(("out", f"mark:{name}"))


def audio_deltas(record: ConnectionRecord) -> int:
    """Audio deltas the emulator sent so far: each reaches a Twilio caller as one media
    message (converted to μ-law on the way)."""
    return len(record.sent_of("response.output_audio.delta"))


# -- variables ---------------------------------------------------------------------------------


async def test_a_twilio_calls_parameters_fill_the_opening_and_the_instructions(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # the phone agent's transcript log is relative
    async with served(phone_agent()) as (_server, host, emulator), \
            aiohttp.ClientSession() as http, http.ws_connect(f"ws://{host}/twilio/stream") as ws:
        phone = PhoneClient(ws)
        await phone.start({"customer_name": "Ann", "From": "+15550001", "To": "+15550002"})
        async with asyncio.timeout(STEP):
            record = await emulator.wait_connection("realtime")
            await record.wait_sent("response.done")
        (update,) = record.received_of("session.update")
        assert "The caller is Ann." in update["session"]["instructions"]
        opening = "Hello Ann, thanks for calling the weather line. Which city?"
        assert asked_words(record) == [opening]
        assert spoken(record) == [opening]
        await phone.take(until_media=1)
        assert phone.media_ms > 0  # the opening reaches the caller as μ-law audio
        await ws.send_json({"event": "stop", "streamSid": "MZ1", "stop": {}})
    (log,) = (tmp_path / "transcripts").iterdir()
    assert opening in log.read_text()


async def test_the_page_is_told_which_of_its_query_parameters_are_the_calls_variables(
        ) -> None:
    async with served(greeter()) as (_server, host, _emulator), \
            aiohttp.ClientSession() as http:
        config = await (await http.get(f"http://{host}/flowspec/config.json")).json()
    assert config["variables"] == ["customer_name"]
    assert config["path"] == "/ws"


async def test_a_value_that_breaks_the_schema_refuses_the_browser_call_and_nothing_else(
        ) -> None:
    async with served(greeter()) as (server, host, emulator), aiohttp.ClientSession() as http:
        async with http.ws_connect(f"ws://{host}/ws?customer_name={'A' * 21}") as ws:
            client = PageClient(ws)
            error = await client.until("error")
            assert error["code"] == "variables.invalid"
            assert "customer_name" in error["message"] and "20 characters" in error["message"]
            ended = await client.until("session.ended")
            assert ended["reason"] == "refused" and ended["message"] == error["message"]
            assert await client.next() is None
            assert ws.close_code == 1008
        async with http.ws_connect(f"ws://{host}/ws?customer_name=Bo") as ws:
            client = PageClient(ws)
            await client.until("session.started")
            assert (await client.spoken_reply())[1] == "Hello Bo"
            await client.send({"type": "end"})
            assert (await client.until("session.ended"))["reason"] == "hangup"
        assert (await http.get(f"http://{host}/healthz")).status == 200
        text = await (await http.get(f"http://{host}/metrics")).text()
    assert metric(text, "flowspec_calls_refused_total", spec="greeter",
                  code="variables.invalid") == 1
    # The refused call never reached the model: the one connection is the good call's.
    (record,) = emulator.of_kind("realtime")
    assert asked_words(record) == ["Hello Bo"]
    assert not server.sessions


async def test_a_value_that_breaks_the_schema_refuses_the_twilio_call_and_nothing_else(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    async with served(phone_agent()) as (_server, host, emulator), \
            aiohttp.ClientSession() as http:
        async with http.ws_connect(f"ws://{host}/twilio/stream") as ws:
            phone = PhoneClient(ws)
            await phone.start({"customer_name": "A" * 81})
            await phone.take()
            assert phone.log == [("in", "close")] and phone.media_ms == 0
        async with http.ws_connect(f"ws://{host}/twilio/stream") as ws:
            phone = PhoneClient(ws)
            await phone.start({"customer_name": "Bo"})
            await phone.take(until_media=1)
            await ws.send_json({"event": "stop", "streamSid": "MZ1", "stop": {}})
        assert (await http.get(f"http://{host}/healthz")).status == 200
        text = await (await http.get(f"http://{host}/metrics")).text()
    assert metric(text, "flowspec_calls_refused_total", spec="phone-agent",
                  code="variables.invalid") == 1
    (record,) = emulator.of_kind("realtime")
    assert asked_words(record)[0] == "Hello Bo, thanks for calling the weather line. Which city?"


# -- end_call ----------------------------------------------------------------------------------


async def test_end_call_on_the_browser_socket_waits_for_the_goodbye_to_be_played() -> None:
    async with served(greeter()) as (server, host, _emulator), \
            aiohttp.ClientSession() as http, \
            http.ws_connect(f"ws://{host}/ws?customer_name=Ann") as ws:
        client = PageClient(ws)
        with capture_events(server.bus, CallEnding) as endings:
            item, text = await client.spoken_reply()
            assert text == "Hello Ann"
            await client.played(item, client.ms(item), playing=False)
            await client.send({"type": "text", "text": "please end the call"})
            item, text = await client.spoken_reply()
            assert text == "Goodbye Ann, and thank you for calling!"
            # The client plays the goodbye slowly, a piece per report: the call goes on.
            total = client.ms(item)
            for share in (0.25, 0.5, 0.75, 1.0):
                await client.played(item, total * share, playing=True)
            assert not endings, "the call ended before its goodbye was heard"
            await client.send({"type": "playback", "item_id": item, "played_ms": math.floor(total),
                               "playing": False})
            ended = await client.until("session.ended")
            assert await client.next() is None
    assert ended == {"type": "session.ended", "reason": "end_call",
                     "message": "The bot ended the call."}
    assert [e.reason for e in endings] == ["end_call"]
    assert client.log[-3:] == [("out", "playback"), ("in", "session.ended"), ("in", "close")]
    assert ws.close_code == 1000


async def test_end_call_on_twilio_closes_the_stream_once_the_goodbye_marks_are_echoed(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    async with served(phone_agent(), script=HANG_UP_ON_SPEECH) as (server, host, emulator), \
            aiohttp.ClientSession() as http, http.ws_connect(f"ws://{host}/twilio/stream") as ws:
        phone = PhoneClient(ws)
        with capture_events(server.bus, CallEnding) as endings:
            await phone.start({"customer_name": "Ann"})
            async with asyncio.timeout(STEP):
                record = await emulator.wait_connection("realtime")
                await record.wait_sent("response.done")
            # The caller hears the opening out, then speaks; the model calls end_call and the
            # goodbye follows its tool call.
            await phone.take(until_media=audio_deltas(record))
            await phone.say(tone_ulaw(600, 0.3) + tone_ulaw(800))
            async with asyncio.timeout(STEP):
                await record.wait_sent("response.done", count=3)
            # The goodbye arrives; its marks are held (not played yet): the call goes on.
            held = await phone.take(until_media=audio_deltas(record), echo=False)
            assert not endings, "the call ended before its goodbye was heard"
            for name in held:
                await phone.echo(name)
            await phone.take()
    assert [e.reason for e in endings] == ["end_call"]
    assert spoken(record)[1:] == ["Thanks for calling, Ann. Goodbye!"]
    assert len(held) > 1
    # Nothing came between the goodbye's audio and its echoed marks but the close.
    echoed = phone.log.index(("out", f"mark:{held[0]}"))
    assert phone.log[echoed:] == [("out", f"mark:{name}") for name in held] + [("in", "close")]


# -- the TwiML webhook ---------------------------------------------------------------------------


async def test_the_twiml_webhook_passes_declared_variables_from_its_query_only(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    async with served(phone_agent()) as (_server, host, _emulator), \
            aiohttp.ClientSession() as http:
        response = await http.post(
            f"http://{host}/twilio/voice?customer_name=Ann%20Lee&utm_source=ad",
            data={"CallSid": "CA1", "From": "+15550001", "To": "+15550002"})
        assert response.status == 200
        twiml = await response.text()
    parameters = dict(re.findall(r'<Parameter name="([^"]*)" value="([^"]*)"/>', twiml))
    assert parameters == {"From": "+15550001", "To": "+15550002", "CallSid": "CA1",
                          "customer_name": "Ann Lee"}
    assert f'url="ws://{host}/twilio/stream"' in twiml
