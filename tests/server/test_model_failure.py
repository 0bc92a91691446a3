"""A call whose model cannot be used says why to the page (session.ended) and closes as a
failure (1011), not as a hang-up or the server going away."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import web

from flowspec.server.app import Server
from flowspec.spec.compile import compile_text
from flowspec.transports.channel import ended

from .conftest import running

BODY = {"error": {"message": "Incorrect API key provided: sk-bad.", "code": "invalid_api_key"}}


@pytest.fixture
async def refusing() -> AsyncIterator[str]:
    async def refuse(request: web.Request) -> web.Response:
        return web.json_response(BODY, status=401)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", refuse)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield f"127.0.0.1:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()


async def test_a_refused_key_ends_the_call_with_a_reason_the_page_shows(refusing: str) -> None:
    graph = compile_text(f"""\
flowspec: 1
name: refused
nodes:
  chat: {{type: transport.text}}
  llm:
    type: openai.realtime
    base_url: ws://{refusing}/v1/realtime
    api_key: sk-bad
    settings: {{session_properties: {{output_modalities: [text]}}}}
edges: [chat -> llm -> chat]
""", "refused.yaml", env={}).raise_for_errors()
    async with running([graph], server=Server([graph])) as (_server, host), \
            aiohttp.ClientSession() as http, http.ws_connect(f"ws://{host}/chat") as ws:
        messages = [await ws.receive_json() for _ in range(2)]
        while messages[-1]["type"] != "session.ended":
            messages.append(await ws.receive_json())
        assert messages[0]["type"] == "session.started"
        ended_message = messages[-1]
        assert ended_message["reason"] == "model_refused"
        assert "refused the bot's API key" in ended_message["message"]
        assert "sk-bad" not in str(messages)
        assert (await ws.receive()).type is aiohttp.WSMsgType.CLOSE
        assert ws.close_code == 1011


def test_each_model_failure_has_its_own_reason() -> None:
    assert ended("llm: The model connection could not be restored: refused", "")[0] == \
        "model_unavailable"
    assert ended("llm: The model could not be used: HTTP 401", "")[0] == "model_refused"
    assert ended("something else", "") == ("ended", "The call ended.")
