"""Server behaviour the emulator does not stage, through the connector seam: reasoning with
encrypted content, `response.failed` and `response.incomplete` without an `error` event."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from typing import Any

from flowspec.emulator import Emulator
from flowspec.frames import ThoughtFrame
from flowspec.nodes.openai_responses.ws import WireSocket
from flowspec.runtime.bus import NodeFailed

from .conftest import compile_graph, running

REASONING = {"type": "reasoning", "id": "rs_1", "encrypted_content": "gAAAA-secret",
             "summary": [{"type": "summary_text", "text": "Thinking."}]}


def reply(response_id: str, status: str, *, text: str = "", **extra: Any) -> list[dict[str, Any]]:
    message = {"type": "message", "id": f"msg_{response_id}", "role": "assistant",
               "status": "completed",
               "content": [{"type": "output_text", "text": text, "annotations": []}]}
    output = [REASONING, message]
    return [
        {"type": "response.created", "response": {"id": response_id, "status": "in_progress"}},
        {"type": "response.output_item.added", "output_index": 0, "item": REASONING},
        {"type": "response.reasoning_summary_text.delta", "item_id": "rs_1", "delta": "Thinking."},
        {"type": "response.output_item.done", "output_index": 0, "item": REASONING},
        {"type": "response.output_text.delta", "item_id": message["id"], "delta": text},
        {"type": "response.output_item.done", "output_index": 1, "item": message},
        {"type": f"response.{status}", "response": {
            "id": response_id, "status": status, "output": output, **extra}},
    ]


class ScriptedSocket:
    """Answers each `response.create` with the next scripted list of events."""

    def __init__(self, replies: list[list[dict[str, Any]]]) -> None:
        self.replies = replies
        self.sent: list[dict[str, Any]] = []
        self._queue: asyncio.Queue[str] = asyncio.Queue()

    async def send_text(self, text: str) -> None:
        message = json.loads(text)
        self.sent.append(message)
        if message["type"] == "response.create":
            for event in self.replies.pop(0):
                self._queue.put_nowait(json.dumps(event))

    async def receive_text(self) -> str:
        return await self._queue.get()

    async def close(self) -> None:
        return None


async def test_reasoning_round_trips_and_failed_or_incomplete_responses_end_the_turn(
    emulator: Emulator,
) -> None:
    socket = ScriptedSocket([
        reply("r1", "completed", text="One.", usage={"input_tokens": 7}),
        reply("r2", "failed", error={"code": "server_error", "message": "It broke"}),
        reply("r3", "incomplete", text="Partial", incomplete_details={
            "reason": "max_output_tokens"}),
        reply("r4", "completed", text="Four."),
    ])

    async def connect(url: str, headers: Mapping[str, str]) -> WireSocket:
        return socket

    graph = compile_graph(emulator,
                          settings="model: gpt-5\nreasoning: {effort: low, summary: auto}")
    async with running(graph, connect=connect) as bot:
        for number in range(1, 5):
            await bot.say(f"turn {number}")
            answers = await bot.wait_answers(number)
        thoughts = [f.text for f in bot.caller.of(ThoughtFrame)]
        failures = [str(f.error) for f in bot.of(NodeFailed)]
    assert [status for _text, status in answers] == [
        "completed", "failed", "incomplete", "completed"]
    assert answers[2][0] == "Partial" and thoughts == ["Thinking."] * 4
    assert "It broke" in failures[0] and "max_output_tokens" in failures[1]
    creates = [m for m in socket.sent if m["type"] == "response.create"]
    assert creates[0]["include"] == ["reasoning.encrypted_content"]
    # Turn 2 chains from r1; its input is only the new user message.
    assert creates[1]["previous_response_id"] == "r1" and len(creates[1]["input"]) == 1
    # After a failure the chain is dropped: the full context replays the encrypted reasoning.
    assert "previous_response_id" not in creates[2]
    replayed = [item for item in creates[2]["input"] if item["type"] == "reasoning"]
    assert replayed[0] == {"type": "reasoning", "id": "rs_1", "summary": REASONING["summary"],
                           "encrypted_content": "gAAAA-secret"}
