"""The JSON side of the browser and text-chat sockets: messages beyond the client bounds get an
`error` reply and the session goes on; a receive loop that fails unexpectedly ends its session,
which never stays behind deaf to its client."""

from __future__ import annotations

import functools
import logging
from typing import Any

import pytest

from flowspec.frames import Frame
from flowspec.runtime import Bus, Context
from flowspec.runtime.bus import NodeFailed, SessionEnded
from flowspec.spec.models.transports import TextTransportSpec, WebsocketTransportSpec
from flowspec.testing import capture_events
from flowspec.transports.channel import ClientChannel
from flowspec.transports.text import TextTransport
from flowspec.transports.websocket import WebsocketTransport
from flowspec.transports.wire import CLOSE_GOING_AWAY, Connection, MemorySocketPair

from .conftest import echo_session

BROWSER = WebsocketTransportSpec.model_validate({"type": "transport.websocket"})
TEXT = TextTransportSpec.model_validate({"type": "transport.text"})
HUGE = "9" * 400
DEEP = "[" * 30000


def browser(pair: MemorySocketPair) -> functools.partial[WebsocketTransport]:
    return functools.partial(WebsocketTransport, connection=Connection(socket=pair.server))


def text(pair: MemorySocketPair) -> functools.partial[TextTransport]:
    return functools.partial(TextTransport, connection=Connection(socket=pair.server))


async def pong(pair: MemorySocketPair) -> None:
    await pair.client.send_json({"type": "ping"})
    assert await pair.client.receive_json() == {"type": "pong"}


@pytest.mark.parametrize("bad", [
    '{"type": "playback", "item_id": "item_1", "played_ms": ' + HUGE + "}",
    '{"type": "playback", "item_id": "item_1", "played_ms": 1e999}',
    DEEP,
    '{"type": "text", "text": "hi", "extra": ' + "[" * 40 + "]" * 40 + "}",
], ids=["400-digit", "1e999", "30000-deep", "40-deep"])
async def test_a_browser_message_beyond_the_bounds_gets_an_error_and_the_session_goes_on(
        bad: str) -> None:
    pair = MemorySocketPair()
    async with echo_session(BROWSER, browser(pair)) as (session, _llm):
        await pair.client.receive_json()
        await pair.client.send_text(bad)
        reply = await pair.client.receive_json()
        assert reply["type"] == "error" and reply["code"] == "message_too_complex", reply
        await pong(pair)
        await pair.client.close()
        await session.wait()
    assert session.close_reason == "client disconnected"


@pytest.mark.parametrize("bad", [DEEP, '{"type": "text", "text": ' + HUGE + "}"],
                         ids=["30000-deep", "400-digit"])
async def test_a_chat_message_beyond_the_bounds_gets_an_error_and_the_session_goes_on(
        bad: str) -> None:
    pair = MemorySocketPair()
    async with echo_session(TEXT, text(pair)) as (session, _llm):
        await pair.client.receive_json()
        await pair.client.send_text(bad)
        reply = await pair.client.receive_json()
        assert reply["type"] == "error" and reply["code"] == "message_too_complex", reply
        await pong(pair)


class FragileTransport:
    """A transport whose own message handler has a bug: `boom` raises what no protocol expects."""

    boundary = True

    def __init__(self, ctx: Context, connection: Connection) -> None:
        self.channel = ClientChannel(ctx, connection, max_message_bytes=4096)

    async def start(self) -> None:
        await self.channel.open(self._on_message)

    async def stop(self) -> None:
        await self.channel.close()

    async def handle(self, frame: Frame, port: str) -> None:
        return None

    async def _on_message(self, kind: str, body: dict[str, Any]) -> None:
        raise OverflowError("a bug in a handler")


async def test_a_receive_loop_that_fails_ends_the_session_once_and_closes_the_socket(
        caplog: pytest.LogCaptureFixture) -> None:
    pair, bus = MemorySocketPair(), Bus()
    fragile = functools.partial(FragileTransport, connection=Connection(socket=pair.server))
    with capture_events(bus, NodeFailed, SessionEnded) as events:
        async with echo_session(TEXT, fragile, bus) as (session, _llm):
            await pair.client.receive_json()
            await pair.client.send_json({"type": "anything"})
            await session.wait()
    failed = [e for e in events if isinstance(e, NodeFailed)]
    assert [(e.node_id, e.during, e.fatal) for e in failed] == [("caller", "task", True)]
    assert isinstance(failed[0].error, OverflowError)
    (ended,) = [e for e in events if isinstance(e, SessionEnded)]
    assert ended.cancelled
    assert "a bug in a handler" in session.close_reason
    assert pair.client.close_code == CLOSE_GOING_AWAY
    assert (await pair.client.receive_json())["type"] == "session.ended"
    logged = [r for r in caplog.records if r.levelno >= logging.WARNING
              and "a bug in a handler" in r.getMessage()]
    assert len(logged) == 1
