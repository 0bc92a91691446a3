"""A call whose model cannot be used says why to the page (session.ended) and closes as a
failure (1011), not as a hang-up or the server going away: refused at connect, or in the middle
of the call (an error refusing the key or its quota), on every model wire."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import web

from flowspec.emulator import Emulator
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


MODELS = {
    "realtime": "type: openai.realtime\n    base_url: {ws}/realtime\n    settings: "
                "{{session_properties: {{output_modalities: [text]}}}}",
    "realtime_beta": "type: openai.realtime_beta\n    base_url: {ws}/realtime\n    settings: "
                     "{{session_properties: {{modalities: [text]}}}}",
    "responses_ws": "type: openai.responses\n    ws_url: {ws}/responses",
    "responses_http": "type: openai.responses\n    transport: http\n    base_url: {http}",
}


@pytest.mark.parametrize("model", list(MODELS))
async def test_a_key_refused_mid_call_ends_it_as_refused(model: str) -> None:
    async with Emulator.start(pace=0) as emu:
        emu.load_script("rules: [{when: {contains: refuse}, fail: {type: invalid_request_error, "
                        "code: invalid_api_key, message: Incorrect API key provided.}}]",
                        text=True)
        llm = MODELS[model].format(ws=emu.ws_base_url, http=emu.http_base_url)
        graph = compile_text(f"""\
flowspec: 1
name: refused
nodes:
  chat: {{type: transport.text}}
  llm:
    {llm}
    api_key: sk-test
edges: [chat -> llm -> chat]
""", "refused.yaml", env={}).raise_for_errors()
        async with running([graph], server=Server([graph])) as (_server, host), \
                aiohttp.ClientSession() as http, http.ws_connect(f"ws://{host}/chat") as ws, \
                asyncio.timeout(20):  # a hang guard
            messages = [await ws.receive_json()]
            await ws.send_json({"type": "text", "text": "Hello?"})
            while messages[-1]["type"] != "response.ended":
                messages.append(await ws.receive_json())
            assert messages[-1]["status"] == "completed"
            await ws.send_json({"type": "text", "text": "Please refuse me."})
            while messages[-1]["type"] != "session.ended":
                messages.append(await ws.receive_json())
            assert messages[-1]["reason"] == "model_refused", messages
            assert (await ws.receive()).type is aiohttp.WSMsgType.CLOSE
            assert ws.close_code == 1011


def test_each_model_failure_has_its_own_reason() -> None:
    assert ended("llm: The model connection could not be restored: refused", "")[0] == \
        "model_unavailable"
    assert ended("llm: The model could not be used: HTTP 401", "")[0] == "model_refused"
    assert ended("something else", "") == ("ended", "The call ended.")
