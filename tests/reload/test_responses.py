"""Responses nodes take new settings from the next request on; the emulator's script conditions
used by the reload tests (`instructions`, `event: session.update`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aiohttp
import pytest

from flowspec.emulator.script import Turn, parse_script
from flowspec.errors import SpecInvalid

from .conftest import SCRIPT, serving, settings, wait

TEXT = """\
flowspec: 1
name: reload-text
nodes:
  caller: {type: transport.text}
  llm:
    type: openai.responses
    settings: {system_instruction: Be brief., temperature: 0.5}
edges:
  - caller -> llm -> caller
"""


async def _ask(ws: aiohttp.ClientWebSocketResponse, text: str) -> str:
    await ws.send_json({"type": "text", "text": text})
    said: list[str] = []
    async with wait():
        while True:
            message: dict[str, Any] = await ws.receive_json()
            if message["type"] == "text":
                said.append(message["text"])
            if message["type"] == "response.ended":
                return "".join(said)


async def test_a_responses_node_uses_new_settings_from_the_next_request(tmp_path: Path) -> None:
    async with serving(tmp_path, TEXT) as served:
        ws = await served.http.ws_connect(f"ws://{served.base}/chat")
        served.clients.append(ws)
        assert (await ws.receive_json())["type"] == "session.started"
        assert "Arr" not in await _ask(ws, "hello")
        status, body = await served.patch(settings(system_instruction="Talk like a pirate.",
                                                   temperature=None))
        assert status == 200, body
        [session] = body["sessions"]
        assert session["status"] == "applied" and session["version"] == 2, session["deferred"]
        assert body["plan"]["nodes"] == [{
            "node": "llm", "type": "openai.responses", "applies": "from the next request",
            "delta": {"system_instruction": "Talk like a pirate.", "temperature": None}}]
        assert "Arr, matey." in await _ask(ws, "hello again")
        record = served.emulator.of_kind("responses_ws")[0]
        first, second = record.received_of("response.create")
        assert first["instructions"] == "Be brief." and first["temperature"] == 0.5
        assert second["instructions"] == "Talk like a pirate." and "temperature" not in second


def test_script_rules_can_match_instructions_and_answer_session_updates() -> None:
    script = parse_script(SCRIPT)
    update = Turn("realtime", 0, '{"instructions": "forbidden"}', "text",
                  event="session.update")
    rule = script.match(update)
    assert rule is not None and rule.fail is not None and rule.fail.code == "invalid_value"
    assert script.match(Turn("realtime", 1, "forbidden", "text")) is None  # not a response rule
    assert script.match(Turn("realtime", 1, "hi", "text", instructions="A PIRATE")) is not None
    with pytest.raises(SpecInvalid) as caught:
        parse_script("rules:\n  - when: {event: hangup, instructions: 3}\n")
    assert {d.pointer for d in caught.value.diagnostics} == {
        "/rules/0/when/event", "/rules/0/when/instructions"}
