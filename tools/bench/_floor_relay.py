"""The floor: a bare aiohttp relay doing per message what any browser ↔ Realtime relay must do.

    python tools/bench/_floor_relay.py MODEL_URL

Prints `PORT <n>` once it listens on 127.0.0.1 (`/ws`). No framework: per browser connection one
model WebSocket; the browser's binary PCM goes out as base64 in an `input_audio_buffer.append`
JSON message; every model event is parsed, audio deltas are decoded and written to the browser as
binary messages. The browser protocol is `transport.websocket`'s, reduced to what the model's
events carry: `session.started`, `speech.started` / `speech.ended`, `response.started` /
`response.ended`, assistant `transcript` deltas and `audio.clear` at barge-in, which also
truncates the interrupted item at the model, as a Realtime client must. Nothing else: no
validation, no limits, no reconnection, no logging. Its CPU per message is the floor the other
servers are measured against.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import sys

import aiohttp
from aiohttp import web

BYTES_PER_MS = 48  # PCM16 at 24 kHz
SESSION = {
    "type": "realtime", "model": "gpt-realtime", "output_modalities": ["audio"],
    "instructions": "You are a helpful, concise assistant.",
    "audio": {"input": {"turn_detection": {"type": "server_vad", "threshold": 0.5,
                                           "prefix_padding_ms": 300,
                                           "silence_duration_ms": 500}},
              "output": {"voice": "marin"}},
}


def dumps(value: object) -> str:
    return json.dumps(value, separators=(",", ":"))


async def upstream(browser: web.WebSocketResponse,
                   model: aiohttp.ClientWebSocketResponse) -> None:
    async for message in browser:
        if message.type == aiohttp.WSMsgType.BINARY:
            await model.send_str(dumps({"type": "input_audio_buffer.append",
                                        "audio": base64.b64encode(message.data).decode()}))
        elif message.type != aiohttp.WSMsgType.TEXT:
            break


async def downstream(browser: web.WebSocketResponse,
                     model: aiohttp.ClientWebSocketResponse) -> None:
    item: str | None = None
    sent_bytes = 0
    async for message in model:
        if message.type != aiohttp.WSMsgType.TEXT:
            break
        event = json.loads(message.data)
        kind = event["type"]
        if kind == "response.output_audio.delta":
            audio = base64.b64decode(event["delta"])
            if event["item_id"] != item:
                item, sent_bytes = event["item_id"], 0
            sent_bytes += len(audio)
            await browser.send_bytes(audio)
        elif kind == "response.output_audio_transcript.delta":
            await browser.send_str(dumps({"type": "transcript", "role": "assistant",
                                          "text": event["delta"], "final": False,
                                          "item_id": event["item_id"]}))
        elif kind == "input_audio_buffer.speech_started":
            await browser.send_str(dumps({"type": "speech.started",
                                          "item_id": event.get("item_id")}))
            if item is not None:
                await browser.send_str(dumps({"type": "audio.clear", "item_id": item}))
                await model.send_str(dumps({"type": "conversation.item.truncate",
                                            "item_id": item, "content_index": 0,
                                            "audio_end_ms": sent_bytes // BYTES_PER_MS}))
                item = None
        elif kind == "input_audio_buffer.speech_stopped":
            await browser.send_str(dumps({"type": "speech.ended",
                                          "item_id": event.get("item_id")}))
        elif kind == "response.created":
            await browser.send_str(dumps({"type": "response.started",
                                          "response_id": event["response"]["id"]}))
        elif kind == "response.done":
            item = None
            await browser.send_str(dumps({"type": "response.ended",
                                          "response_id": event["response"]["id"],
                                          "status": event["response"]["status"]}))
        elif kind == "session.created":
            await model.send_str(dumps({"type": "session.update", "session": SESSION}))


def app(model_url: str) -> web.Application:
    application = web.Application()
    http: list[aiohttp.ClientSession] = []

    async def startup(_app: web.Application) -> None:
        http.append(aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)))

    async def cleanup(_app: web.Application) -> None:
        await http[0].close()

    async def relay(request: web.Request) -> web.WebSocketResponse:
        browser = web.WebSocketResponse(max_msg_size=0)
        await browser.prepare(request)
        async with http[0].ws_connect(model_url, max_msg_size=0,
                                      headers={"Authorization": "Bearer bench"}) as model:
            await browser.send_str(dumps({"type": "session.started"}))
            tasks = {asyncio.create_task(upstream(browser, model)),
                     asyncio.create_task(downstream(browser, model))}
            try:
                await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for task in tasks:
                    task.cancel()
                for task in tasks:
                    with contextlib.suppress(asyncio.CancelledError, ConnectionError):
                        await task
        await browser.close()
        return browser

    application.router.add_get("/ws", relay)
    application.on_startup.append(startup)
    application.on_cleanup.append(cleanup)
    return application


async def main(model_url: str) -> None:
    runner = web.AppRunner(app(model_url), access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    print(f"PORT {runner.addresses[0][1]}", flush=True)
    loop = asyncio.get_running_loop()
    try:
        while (await loop.run_in_executor(None, sys.stdin.readline)).strip() not in ("quit", ""):
            pass
    finally:
        await runner.cleanup()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
