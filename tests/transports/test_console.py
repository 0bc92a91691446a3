"""The console transport with in-memory input and output."""

from __future__ import annotations

import asyncio
import functools
import io

from flowspec.spec.models.transports import ConsoleTransportSpec
from flowspec.testing import until
from flowspec.transports.console import ConsoleIO, ConsoleTransport

from .conftest import echo_session

SPEC = ConsoleTransportSpec.model_validate({"type": "transport.console", "prompt": "? "})


async def test_lines_in_replies_out_quit_ends() -> None:
    reader, out = asyncio.StreamReader(), io.StringIO()
    factory = functools.partial(ConsoleTransport, io=ConsoleIO(reader, out))
    async with echo_session(SPEC, factory) as (session, _llm):
        reader.feed_data(b"hello\n")
        await until(lambda: out.getvalue().count("? ") == 2)
        assert out.getvalue() == "? bot: echo: hello\n? "
        reader.feed_data(b"\n/quit\n")
        await session.wait()
    assert session.close_reason == "user quit"


async def test_end_of_input_waits_for_the_last_answer() -> None:
    reader, out = asyncio.StreamReader(), io.StringIO()
    factory = functools.partial(ConsoleTransport, io=ConsoleIO(reader, out))
    async with echo_session(SPEC, factory) as (session, _llm):
        reader.feed_data(b"one\ntwo\n")
        reader.feed_eof()
        await session.wait()
    assert session.close_reason == "end of input"
    assert "bot: echo: two\n" in out.getvalue()


async def test_ctrl_d_at_the_prompt_ends_the_line() -> None:
    reader, out = asyncio.StreamReader(), io.StringIO()
    factory = functools.partial(ConsoleTransport, io=ConsoleIO(reader, out))
    async with echo_session(SPEC, factory) as (session, _llm):
        reader.feed_data(b"hello\n")
        await until(lambda: out.getvalue().count("? ") == 2)
        reader.feed_eof()  # what Ctrl-D sends
        await session.wait()
    assert out.getvalue() == "? bot: echo: hello\n? \n"
