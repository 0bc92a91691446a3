"""`events.webhook` in a real Realtime session against the emulator, posting to a receiver on
loopback: what it sends, signed; and that a receiver which is down, slow or failing changes
nothing for the call."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from functools import partial
from typing import Any

import pytest
from aiohttp import web

from flowspec.conversation.events import CallEnding
from flowspec.emulator import Emulator
from flowspec.events.signing import SIGNATURE_HEADER, verify
from flowspec.events.webhook import WebhookEventSettled, WebhookNode
from flowspec.frames import TextFrame, TranscriptFrame
from tests.nodes.openai_realtime.harness import STEP, Run, run_spec, spec

SECRET = "whsec-test"
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class Receiver:
    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self.valid: list[bool] = []
        self.arrived = asyncio.Event()

    async def accept(self, request: web.Request) -> web.Response:
        body = await request.read()
        self.valid.append(verify(SECRET, request.headers.get(SIGNATURE_HEADER, ""), body))
        event = json.loads(body)
        assert request.headers["X-Flowspec-Event"] == event["type"]
        assert request.headers["X-Flowspec-Delivery"] == event["id"]
        self.events.append(event)
        self.arrived.set()
        return web.Response(status=204)

    def of(self, kind: str) -> list[dict[str, Any]]:
        return [e for e in self.events if e["type"] == kind]


@asynccontextmanager
async def receiving(handler: Handler) -> AsyncIterator[str]:
    app = web.Application()
    app.router.add_post("/hook", handler)
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}/hook"
    finally:
        await runner.cleanup()


def closed_port_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}/hook"


def bot(emu: Emulator, url: str, extra: str = "") -> str:
    return spec(emu, tools=True) + f"""
  hook:
    type: events.webhook
    url: {url}
    secret: {SECRET}
    allow_private_network: true
    metadata: {{customer: '{{{{customer_name}}}}'}}
{extra}
variables:
  customer_name: {{default: there}}
conversation:
  end_call: {{goodbye: Goodbye.}}
"""


def nodes_last(text: str) -> str:
    """`spec()` ends with the edges: move the webhook node into `nodes:`."""
    head, _, rest = text.partition("\nedges:\n  - caller -> llm -> caller\n")
    return head + rest.split("variables:")[0] + "edges:\n  - caller -> llm -> caller\n" + \
        "variables:" + rest.split("variables:")[1]


async def call(emu: Emulator, url: str, extra: str = "", **options: Any) -> Run:
    text = nodes_last(bot(emu, url, extra))
    node = partial(WebhookNode, flush_budget_s=options.pop("flush_budget_s", 4.0))
    async with run_spec(emu, text, variables={"customer_name": "Ann"},
                        extra_nodes={"events.webhook": node}) as run:
        await run.ready()
        await run.caller.ctx.emit(TextFrame(text="What is the weather in Paris?", role="user"))
        async with STEP(10):
            await run.caller.wait_for(lambda: len(finals(run)) >= 1)
        await run.caller.ctx.emit(TextFrame(text="Thanks, please end the call.", role="user"))
        async with STEP(10):
            await run.wait_event(lambda: bool(run.of(CallEnding)))
            await run.session.wait()
    return run


def finals(run: Run) -> list[str]:
    return [f.text for f in run.caller.of(TranscriptFrame) if f.role == "assistant" and f.final]


async def test_a_call_posts_signed_events_from_start_to_end(emulator: Emulator) -> None:
    receiver = Receiver()
    async with receiving(receiver.accept) as url:
        run = await call(emulator, url)
    kinds = [e["type"] for e in receiver.events]
    assert kinds[0] == "call.started" and kinds[-1] == "call.ended"
    assert all(receiver.valid) and len(receiver.valid) == len(kinds)
    started = receiver.of("call.started")[0]
    assert started["data"]["variables"]["customer_name"] == "Ann"
    assert started["metadata"] == {"customer": "Ann"}
    assert started["bot"] == "realtime-test" and started["session_id"] == run.session.id
    transcript = [(e["data"]["role"], e["data"]["text"]) for e in receiver.of("transcript")]
    assert transcript[0] == ("user", "What is the weather in Paris?")
    assert ("user", "Thanks, please end the call.") in transcript
    assert transcript[-1] == ("assistant", "Goodbye.")
    tools = [e["data"]["name"] for e in receiver.of("tool.called")]
    assert tools == ["get_weather", "end_call"]
    assert receiver.of("tool.called")[0]["data"]["arguments"] == {"location": "example"}
    ended = receiver.of("call.ended")[0]["data"]
    assert ended["reason"] == "end_call"
    assert [(t["role"], t["text"]) for t in ended["transcript"]] == transcript, (ended, transcript)
    assert ended["usage"]["input_text"] > 0 and ended["usage"]["output_audio"] > 0
    outcomes = {e.outcome for e in run.of(WebhookEventSettled)}
    assert outcomes == {"delivered"}


async def test_a_receiver_that_is_down_changes_nothing_for_the_call(emulator: Emulator) -> None:
    run = await call(emulator, closed_port_url(), "    max_retries: 1\n    backoff_s: 0.01\n",
                     flush_budget_s=0.5)
    assert finals(run)[-1] == "Goodbye."  # the call went to its end
    failed = [e for e in run.of(WebhookEventSettled) if e.outcome == "failed"]
    assert failed and {e.outcome for e in run.of(WebhookEventSettled)} <= {"failed", "dropped"}


async def test_a_slow_receiver_holds_no_turn_up_and_full_queues_drop(emulator: Emulator) -> None:
    receiver = Receiver()
    release = asyncio.Event()

    async def slow(request: web.Request) -> web.Response:
        await receiver.accept(request)
        await release.wait()  # never answers within the call
        return web.Response(status=204)

    async with receiving(slow) as url:
        run = await call(emulator, url, "    timeout_s: 5\n    queue_size: 2\n",
                         flush_budget_s=0.2)
        release.set()
    # The call completed while the first event's POST was still waiting for its answer.
    assert finals(run)[-1] == "Goodbye."
    assert receiver.of("call.started") and len(receiver.events) == 1
    outcomes = [e.outcome for e in run.of(WebhookEventSettled)]
    assert outcomes.count("dropped") >= 3


async def test_retries_are_bounded(emulator: Emulator) -> None:
    attempts: list[str] = []

    async def failing(request: web.Request) -> web.Response:
        attempts.append(json.loads(await request.read())["type"])
        return web.Response(status=503)

    async with receiving(failing) as url:
        run = await call(emulator, url, "    max_retries: 2\n    backoff_s: 0.01\n    "
                         "events: [call.started]\n")
    assert attempts == ["call.started"] * 3
    assert [e.outcome for e in run.of(WebhookEventSettled)] == ["failed"]


@pytest.mark.parametrize("status", [400, 410])
async def test_a_refusal_is_not_retried(emulator: Emulator, status: int) -> None:
    attempts: list[str] = []

    async def refusing(request: web.Request) -> web.Response:
        attempts.append(json.loads(await request.read())["type"])
        return web.Response(status=status)

    async with receiving(refusing) as url:
        await call(emulator, url, "    events: [call.ended]\n")
    assert attempts == ["call.ended"]
