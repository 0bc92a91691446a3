"""The JSON text chat protocol over an in-memory socket."""

from __future__ import annotations

import functools

from flowspec.spec.models.transports import TextTransportSpec
from flowspec.transports.text import TextTransport
from flowspec.transports.wire import CLOSE_TOO_BIG, Connection, MemorySocketPair

from .conftest import echo_session

SPEC = TextTransportSpec.model_validate({"type": "transport.text", "max_message_bytes": 256})


def transport(pair: MemorySocketPair) -> functools.partial[TextTransport]:
    return functools.partial(TextTransport, connection=Connection(socket=pair.server,
                                                                  spec_name="chat"))


async def test_chat_round_trip_and_end() -> None:
    pair = MemorySocketPair()
    async with echo_session(SPEC, transport(pair)) as (session, _llm):
        hello = await pair.client.receive_json()
        assert hello["type"] == "session.started" and hello["spec"]["name"] == "chat"
        await pair.client.send_json({"type": "text", "text": "hi there"})
        replies = [await pair.client.receive_json() for _ in range(5)]
        assert [r["type"] for r in replies] == ["response.started", "transcript", "text", "text",
                                                "response.ended"]
        assert "".join(r["text"] for r in replies[2:4]) == "echo: hi there"
        await pair.client.send_json({"type": "end"})
        await session.wait()
    assert session.close_reason == "client ended the session"


async def test_bad_input_gets_errors() -> None:
    pair = MemorySocketPair()
    async with echo_session(SPEC, transport(pair)) as (session, _llm):
        await pair.client.receive_json()
        cases: list[tuple[str | bytes, str]] = [
            (b"\x00", "unsupported"), ("nope", "invalid_json"),
            ('{"type": 3}', "invalid_message"), ('{"type": "x"}', "unknown_type"),
            ('{"type": "text", "text": "  "}', "invalid_message")]
        for bad, code in cases:
            if isinstance(bad, bytes):
                await pair.client.send_bytes(bad)
            else:
                await pair.client.send_text(bad)
            reply = await pair.client.receive_json()
            assert (reply["type"], reply["code"]) == ("error", code)
        await pair.client.send_text("x" * 300)
        await session.wait()
    assert pair.client.close_code == CLOSE_TOO_BIG
