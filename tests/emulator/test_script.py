"""Script files: format, located errors, and faults firing exactly where scripted."""

from __future__ import annotations

import asyncio
import base64
from pathlib import Path

import pytest
from openai import AsyncOpenAI
from websockets.exceptions import ConnectionClosed

from flowspec.emulator import Emulator, load_script, parse_script
from flowspec.emulator.script import Turn
from flowspec.errors import SpecInvalid

from .helpers import events_until

GOOD = """\
audio_transcripts: [book a table for two]
rules:
  - name: weather
    when: {contains: weather, api: realtime}
    say: It is sunny.
  - when: {regex: "^book", input: text}
    times: 1
    call: {name: book_table, arguments: {party: 2}}
  - when: {turn: 3}
    fail: {type: server_error, code: overloaded, message: busy, status: 503, stage: stream}
    after_chunks: 2
"""


def test_good_script_parses_and_matches_in_order() -> None:
    script = parse_script(GOOD)
    assert script.next_transcript() == "book a table for two"
    assert script.next_transcript() is None
    weather = script.match(Turn("realtime", 1, "Weather today?", "audio"))
    assert weather is not None and weather.name == "weather" and weather.say == "It is sunny."
    assert script.match(Turn("responses", 1, "Weather today?", "text")) is None
    booking = script.match(Turn("responses", 1, "Book it", "text"))
    assert booking is not None and booking.calls[0].arguments == {"party": 2}
    assert script.match(Turn("responses", 1, "Book it", "text")) is None  # times: 1
    failing = script.match(Turn("responses", 3, "x", "text"))
    assert failing is not None and failing.fail is not None
    assert (failing.fail.status, failing.fail.stage, failing.after_chunks) == (503, "stream", 2)


def test_json_script_file_loads(tmp_path: Path) -> None:
    path = tmp_path / "rules.json"
    path.write_text('{"rules": [{"when": {"contains": "hi"}, "say": "hello"}]}')
    assert load_script(path).rules[0].say == "hello"


@pytest.mark.parametrize(
    ("text", "line", "column", "pointer", "fragment"),
    [
        ("rules:\n  - when: {contanis: x}\n    say: y\n", 2, 12, "/rules/0/when/contanis",
         "Unknown condition"),
        ("rules:\n  - say: hi\n  - drop: true\n    fail: true\n", 3, 5, "/rules/1",
         "either fail or drop"),
        ("rules:\n  - when: {regex: '('}\n    say: x\n", 2, 12, "/rules/0/when/regex",
         "does not compile"),
        ("rules:\n  - fail: {status: 200}\n", 2, 12, "/rules/0/fail/status", "HTTP error status"),
        ("rules:\n  - stall_ms: -5\n", 2, 5, "/rules/0/stall_ms", "non-negative"),
        ("rulez: []\n", 1, 1, "/rulez", "Unknown key"),
    ],
)
def test_bad_scripts_have_located_diagnostics(
    text: str, line: int, column: int, pointer: str, fragment: str
) -> None:
    with pytest.raises(SpecInvalid) as caught:
        parse_script(text, source="bad.yaml")
    (diagnostic,) = caught.value.diagnostics
    assert (diagnostic.source, diagnostic.line, diagnostic.column) == ("bad.yaml", line, column)
    assert diagnostic.pointer == pointer and fragment in diagnostic.message


def test_yaml_syntax_error_is_located() -> None:
    with pytest.raises(SpecInvalid) as caught:
        parse_script("rules: [\n  {say: x\n", source="s.yaml")
    diagnostic = caught.value.diagnostics[0]
    assert diagnostic.code == "script.syntax" and diagnostic.line is not None


async def test_realtime_error_event_fault_on_the_scripted_turn_only(
    emulator: Emulator, client: AsyncOpenAI
) -> None:
    emulator.script = parse_script(
        "rules: [{when: {turn: 2}, fail: {type: server_error, code: server_error, message: oops}}]"
    )
    async with client.realtime.connect(model="gpt-realtime") as conn:
        await conn.recv()
        await conn.session.update(session={"type": "realtime", "output_modalities": ["text"]})
        await conn.recv()
        await conn.response.create()
        first = await events_until(conn, "response.done")
        assert first[-1].response.status == "completed"
        await conn.response.create()
        error = await conn.recv()
        assert error.type == "error" and error.error.message == "oops"
        await conn.response.create()
        third = await events_until(conn, "response.done")
        assert third[-1].response.status == "completed"


async def test_realtime_stream_failure_after_scripted_chunks(
    emulator: Emulator, client: AsyncOpenAI
) -> None:
    emulator.script = parse_script(
        "rules: [{say: a b c d e, fail: {stage: stream, code: server_error, message: died},"
        " after_chunks: 2}]"
    )
    async with client.realtime.connect(model="gpt-realtime") as conn:
        await conn.recv()
        await conn.session.update(session={"type": "realtime", "output_modalities": ["text"]})
        await conn.recv()
        await conn.response.create()
        events = await events_until(conn, "response.done")
    assert [e.type for e in events].count("response.output_text.delta") == 2
    done = events[-1].response
    assert done.status == "failed" and done.status_details.error.message == "died"
    assert done.output[0].status == "incomplete"


async def test_realtime_dropped_socket_after_scripted_chunks(
    emulator: Emulator, client: AsyncOpenAI
) -> None:
    emulator.script = parse_script("rules: [{say: one two three, drop: true, after_chunks: 3}]")
    async with client.realtime.connect(model="gpt-realtime") as conn:
        await conn.recv()
        await conn.response.create()
        audio_chunks = 0
        with pytest.raises(ConnectionClosed):
            async for event in conn:
                assert event.type != "response.done"
                if event.type == "response.output_audio.delta":
                    audio_chunks += 1
                    assert base64.b64decode(event.delta)
    assert audio_chunks == 3
    record = emulator.connections[0]
    async with asyncio.timeout(10):
        await record.wait_closed()


async def test_stall_holds_the_response_open_until_cancelled(
    emulator: Emulator, client: AsyncOpenAI
) -> None:
    emulator.script = parse_script("rules: [{stall_ms: 600000, say: never}]")
    async with client.realtime.connect(model="gpt-realtime") as conn:
        await conn.recv()
        await conn.response.create()
        await events_until(conn, "rate_limits.updated")
        # Still stalled: another create is refused because the first is active.
        await conn.response.create()
        assert (await conn.recv()).error.code == "conversation_already_has_active_response"  # type: ignore[union-attr]
        await conn.response.cancel()
        done = (await events_until(conn, "response.done"))[-1]
    assert done.response.status == "cancelled" and done.response.output == []
    sent = emulator.connections[0].sent
    assert not any(e["type"].startswith("response.output_audio") for e in sent)
