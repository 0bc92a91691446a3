"""A Responses node in a spoken conversation, end to end on the emulator: the browser transport
(over an in-memory socket the test plays the page on) -> `openai.transcribe` -> `openai.responses`
-> `openai.speech` -> the transport, over both Responses transports.

What the wire shows: the speech node's first request leaves while the Responses stream is still
running; on a barge-in the page is told to clear its audio and gets at most one more frame of
the old reply, the provider requests in flight are cancelled, and the next Responses request's
input holds only the words the page reported as played."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import pytest

from flowspec.emulator import Emulator, parse_script, voice
from flowspec.emulator.records import ConnectionRecord
from flowspec.nodes.openai_responses.node import ResponsesNode
from flowspec.runtime.bus import Bus, BusEvent
from flowspec.runtime.executor import Executor
from flowspec.runtime.registry import Registry
from flowspec.runtime.session import Session
from flowspec.spec.compile import compile_text
from flowspec.testing import make_registry, until
from flowspec.transports.websocket import WebsocketTransport
from flowspec.transports.wire import Connection, MemorySocketPair
from tests.emulator.conformance import check_speech_request
from tests.nodes.cascade_harness import STEP, check_transcription_clients
from tests.nodes.openai_realtime.harness import silence, speech

SPEC = """
flowspec: 1
name: cascade-test
nodes:
  caller:
    type: transport.websocket
    audio: {{encoding: pcm16, sample_rate: 24000}}
  stt:
    type: openai.transcribe
    base_url: {ws}/realtime
    api_key: test-key
    settings:
      model: gpt-4o-transcribe
      turn_detection: {{type: server_vad, silence_duration_ms: 400}}
  llm:
    type: openai.responses
    transport: {transport}
    api_key: test-key
    base_url: {http}
    ws_url: {ws}/responses
    settings:
      system_instruction: Be brief.
  tts:
    type: openai.speech
    base_url: {http}
    api_key: test-key
    settings: {{model: gpt-4o-mini-tts, voice: marin}}
edges:
  - caller -> stt -> llm -> tts -> caller
  - stt -> caller
"""
TRANSPORTS = ["websocket", "http"]
BYTES_PER_MS = 48
FIRST = "Here is the first part of a long answer."
STREAMING = f"""
audio_transcripts: [tell me everything, stop that is enough]
rules:
  - when: {{contains: everything}}
    times: 1
    say: {FIRST} The second part never comes out at all.
    after_chunks: 10           # up to " The": the first sentence has ended, then a long stall
    stall_ms: 60000
"""


class Clock:
    """The transport's playback clock, held still: positions are what the page reports."""

    now = 1000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Page:
    """The browser's side of the socket: every message it got, in order (JSON or audio)."""

    pair: MemorySocketPair
    got: list[dict[str, Any] | bytes] = field(default_factory=list)
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    async def read(self) -> None:
        while (message := await self.pair.client.receive()) is not None:
            self.got.append(json.loads(message) if isinstance(message, str) else message)
            self.changed.set()

    async def wait_for(self, check: Callable[[], bool]) -> None:
        async with STEP(20):
            while not check():
                self.changed.clear()
                await self.changed.wait()

    async def talk(self, pcm: bytes, chunk_ms: int = 20) -> None:
        size = chunk_ms * BYTES_PER_MS
        for start in range(0, len(pcm), size):
            await self.pair.client.send_bytes(pcm[start:start + size])
            await asyncio.sleep(0)

    async def played(self, item_id: str, played_ms: float) -> None:
        await self.pair.client.send_json({"type": "playback", "item_id": item_id,
                                          "played_ms": played_ms, "playing": True})

    def messages(self, kind: str) -> list[dict[str, Any]]:
        return [m for m in self.got if isinstance(m, dict) and m.get("type") == kind]

    def audio_of(self, item_id: str) -> list[bytes]:
        """The audio messages of one item, in order (each follows its item's audio.started)."""
        current: str | None = None
        frames: list[bytes] = []
        for message in self.got:
            if isinstance(message, dict) and message.get("type") == "audio.started":
                current = message["item_id"]
            elif isinstance(message, bytes) and current == item_id:
                frames.append(message)
        return frames

    def after_clear(self, item_id: str) -> list[bytes]:
        """Audio of `item_id` the page got after it was told to clear that item."""
        clear = next(i for i, m in enumerate(self.got) if isinstance(m, dict)
                     and m.get("type") == "audio.clear" and m.get("item_id") == item_id)
        current: str | None = None
        stale: list[bytes] = []
        for message in self.got[clear + 1:]:
            if isinstance(message, dict) and message.get("type") == "audio.started":
                current = message["item_id"]
            elif isinstance(message, bytes) and current in (None, item_id):
                stale.append(message)
        return stale


@dataclass
class Call:
    session: Session
    page: Page
    emu: Emulator
    events: list[BusEvent]

    @property
    def llm(self) -> ResponsesNode:
        node = self.session.node("llm")
        assert isinstance(node, ResponsesNode)
        return node

    def requests(self, transport: str) -> list[dict[str, Any]]:
        """The Responses requests on the wire, in order."""
        if transport == "websocket":
            return [e for r in self.emu.of_kind("responses_ws")
                    for e in r.received_of("response.create")]
        return [r.received[0] for r in self.emu.of_kind("responses_http")]

    async def wait_requests(self, transport: str, count: int) -> list[dict[str, Any]]:
        await until(lambda: len(self.requests(transport)) >= count, polls=20_000)
        return self.requests(transport)


@asynccontextmanager
async def calling(emu: Emulator, transport: str) -> AsyncIterator[Call]:
    text = SPEC.format(ws=emu.ws_base_url, http=emu.http_base_url, transport=transport)
    graph = compile_text(text, env={}).raise_for_errors()
    pair = MemorySocketPair()
    registry = Registry(parent=make_registry())
    registry.register("transport.websocket", partial(
        WebsocketTransport, connection=Connection(socket=pair.server, spec_name="cascade-test"),
        clock=Clock()))
    bus = Bus()
    events: list[BusEvent] = []
    page = Page(pair)
    with bus.subscribe(events.append):
        async with asyncio.TaskGroup() as group:
            reader = group.create_task(page.read())
            async with Executor(registry=registry, bus=bus).session(graph) as session:
                yield Call(session, page, emu, events)
            reader.cancel()
    check_transcription_clients(emu)
    for record in emu.of_kind("speech"):
        check_speech_request(record.received[0])


def assistant_texts(request: dict[str, Any]) -> list[str]:
    return [part["text"] for item in request["input"]
            if item.get("type") == "message" and item.get("role") == "assistant"
            for part in item["content"]]


def user_texts(request: dict[str, Any]) -> list[str]:
    return [part["text"] for item in request["input"]
            if item.get("type") == "message" and item.get("role") == "user"
            for part in item["content"]]


def responses_record(emu: Emulator, transport: str, index: int = 0) -> ConnectionRecord:
    return emu.of_kind("responses_ws" if transport == "websocket" else "responses_http")[index]


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_speaking_starts_at_the_first_sentence_while_the_reply_streams(
    emulator: Emulator, transport: str,
) -> None:
    emulator.script = parse_script(STREAMING)
    async with calling(emulator, transport) as call:
        await call.page.talk(silence(300) + speech("Tell me everything.") + silence(700))
        async with STEP(20):
            first = await emulator.wait_connection("speech")
        stream = responses_record(emulator, transport)
        # On the wire: the speech request went out while the Responses stream had sent ten
        # deltas and stalled, long before its end.
        assert first.received[0]["input"] == FIRST
        deltas = [e["delta"] for e in stream.sent_of("response.output_text.delta")]
        assert "".join(deltas) == FIRST + " The"
        assert not stream.sent_of("response.completed") and not stream.closed
        (request,) = call.requests(transport)
        assert user_texts(request) == ["tell me everything"]


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_barge_in_while_the_reply_streams_keeps_only_the_words_played(
    emulator: Emulator, transport: str,
) -> None:
    emulator.script = parse_script(STREAMING)
    async with calling(emulator, transport) as call:
        page = call.page
        await page.talk(silence(300) + speech("Tell me everything.") + silence(700))
        await page.wait_for(lambda: bool(page.messages("audio.started")))
        item = page.messages("audio.started")[0]["item_id"]
        full_ms = voice.duration_ms(FIRST)
        await page.wait_for(lambda: sum(map(len, page.audio_of(item))) >= full_ms * BYTES_PER_MS)
        played_ms = round(full_ms * 0.4)
        await page.played(item, played_ms)

        await page.talk(speech("Stop, that is enough.") + silence(700))
        await page.wait_for(lambda: bool(page.messages("audio.clear")))
        first, second = await call.wait_requests(transport, 2)
        stream = responses_record(emulator, transport)
        if transport == "websocket":
            async with STEP(20):
                await stream.wait_received("response.cancel")
            (created, *_) = stream.sent_of("response.created")
            ends = [e["response"] for e in stream.sent if e["type"] in (
                "response.completed", "response.failed", "response.incomplete")
                and e["response"]["id"] == created["response"]["id"]]
            assert [end["status"] for end in ends] == ["cancelled"]
        else:
            async with STEP(20):
                await stream.wait_closed()  # the SSE request was hung up on
            assert not stream.sent_of("response.completed")
        assert page.messages("audio.clear") == [{"type": "audio.clear", "item_id": item}]
        assert len(page.after_clear(item)) <= 1

    heard = assistant_texts(second)
    assert len(heard) == 1, second["input"]
    words = heard[0]
    # The played 40% of the sentence, to the end of the word being spoken.
    assert FIRST.startswith(words) and words != FIRST
    assert FIRST[len(words):][:1] in (" ", "")
    assert abs(len(words) / len(FIRST) - 0.4) < 0.15
    assert user_texts(second)[-1] == "stop that is enough"
    assert "The second part" not in json.dumps(second)
    assert "previous_response_id" not in second  # the cancelled reply is in no chain
    assert user_texts(first) == ["tell me everything"]


PLAYING = f"""
audio_transcripts: [tell me everything, stop that is enough]
rules:
  - when: {{contains: everything}}
    times: 1
    say: {FIRST} The second part is here as well. And a third part ends it.
"""


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_barge_in_after_the_reply_ended_truncates_it_and_rebuilds_the_chain(
    emulator: Emulator, transport: str,
) -> None:
    emulator.script = parse_script(PLAYING)
    async with calling(emulator, transport) as call:
        page = call.page
        await page.talk(silence(300) + speech("Tell me everything.") + silence(700))
        # All of it was spoken and sent: the page has it buffered, playing.
        await page.wait_for(lambda: len(page.messages("text")) == 3)
        await until(lambda: len(emulator.of_kind("speech")) == 3 and all(
            r.closed for r in emulator.of_kind("speech")), polls=20_000)
        item = page.messages("audio.started")[0]["item_id"]
        first_ms = voice.duration_ms(FIRST)
        second_ms = voice.duration_ms("The second part is here as well.")
        await page.played(item, first_ms + second_ms // 2)

        await page.talk(speech("Stop, that is enough.") + silence(700))
        first, second = await call.wait_requests(transport, 2)
        assert page.messages("audio.clear") == [{"type": "audio.clear", "item_id": item}]
        assert page.after_clear(item) == []
        assert not emulator.of_kind("speech")[-1].cut_short
    said = " The second part is here as well."
    (heard,) = assistant_texts(second)
    assert heard.startswith(FIRST) and (FIRST + said).startswith(heard)
    assert len(FIRST) < len(heard) < len(FIRST + said)
    assert (FIRST + said)[len(heard):][:1] == " "
    assert "third" not in json.dumps(second)
    # The server's chain holds the whole reply: the next request sends the context afresh.
    assert "previous_response_id" not in second
    assert user_texts(second) == ["tell me everything", "stop that is enough"]


LONG = ("This answer goes on for a long while, with many words in a row, so that its audio "
        "is still arriving from the speech service when the caller starts to talk over it, "
        "which they do.")


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_barge_in_while_audio_streams_stops_it_within_a_frame(transport: str) -> None:
    # Paced: speech streams at four times real time, so the sentence's request is in flight.
    async with Emulator.start(pace=1.0, keep_records=True) as emu:
        emu.script = parse_script(f"""
audio_transcripts: [tell me everything, stop that is enough]
rules:
  - when: {{contains: everything}}
    times: 1
    say: {LONG} The rest is never heard.
""")
        async with calling(emu, transport) as call:
            page = call.page
            await page.talk(silence(300) + speech("Tell me everything.") + silence(700))
            await page.wait_for(lambda: bool(page.messages("audio.started")))
            item = page.messages("audio.started")[0]["item_id"]
            await page.wait_for(lambda: sum(map(len, page.audio_of(item)))
                                >= 1500 * BYTES_PER_MS)
            await page.played(item, 200)  # far less than the page has: it is buffered
            await page.talk(speech("Stop, that is enough.") + silence(700))
            first, second = await call.wait_requests(transport, 2)
            (spoken, *rest) = emu.of_kind("speech")
            async with STEP(20):
                await spoken.wait_closed()
            assert spoken.received[0]["input"] == LONG
            assert spoken.cut_short  # cancelled mid-stream
            assert len(page.after_clear(item)) <= 1  # at most the frame already on its way
            received = sum(map(len, page.audio_of(item)))
            assert received < len(voice.synthesize(LONG))
            assert all("never heard" not in r.received[0]["input"] for r in rest)
        (heard,) = assistant_texts(second)
        assert LONG.startswith(heard) and LONG[len(heard):][:1] == " "
        # 200 ms of a sentence of several seconds: its first word or two, not the 1.5 s and
        # more that had reached the page.
        share = len(LONG) / voice.duration_ms(LONG)
        assert 0 < len(heard) <= share * 200 + 8 < share * 1500
        assert user_texts(second)[-1] == "stop that is enough"


async def test_a_reply_heard_to_its_end_keeps_the_chain(emulator: Emulator) -> None:
    emulator.script = parse_script("audio_transcripts: [first question, second question]")
    async with calling(emulator, "websocket") as call:
        page = call.page
        await page.talk(silence(300) + speech("First question?") + silence(700))
        await page.wait_for(lambda: bool(page.messages("response.ended")))
        item = page.messages("audio.started")[0]["item_id"]
        said = "You said: first question"
        await page.pair.client.send_json({"type": "playback", "item_id": item,
                                          "played_ms": voice.duration_ms(said),
                                          "playing": False})
        await page.talk(speech("Second question?") + silence(700))
        first, second = await call.wait_requests("websocket", 2)
    (done, *_) = responses_record(emulator, "websocket").sent_of("response.completed")
    # The user's speech interrupted nothing that was unheard: the chain goes on.
    assert second["previous_response_id"] == done["response"]["id"]
    assert user_texts(second) == ["second question"] and not assistant_texts(second)
    assert assistant_texts(first) == []
