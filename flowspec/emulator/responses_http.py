"""`POST /v1/responses`: SSE when `stream` is true, one JSON response otherwise."""

from __future__ import annotations

import json

from aiohttp import web

from flowspec.emulator.records import ConnectionRecord
from flowspec.emulator.responses import (
    Dropped,
    Request,
    ResponseStore,
    ResponseStream,
    failure_error,
    input_items,
    make_plan,
    not_found,
    validate,
)
from flowspec.emulator.script import Script
from flowspec.emulator.wire import JSONObject, WireError, new_id


def error_response(err: WireError, request_id: str) -> web.Response:
    """A non-2xx JSON error as OpenAI sends before any streaming starts."""
    # `x-should-retry: false` keeps the SDK from sleeping through its retry backoff in tests.
    return web.json_response(
        {"error": err.body()},
        status=err.status,
        headers={"x-request-id": request_id, "x-should-retry": "false"},
    )


async def handle_post(
    request: web.Request,
    *,
    record: ConnectionRecord,
    store: ResponseStore,
    script: Script | None,
    pace: float,
) -> web.StreamResponse:
    request_id = new_id("req")
    text = await request.text()
    record.note_received(text)
    try:
        try:
            body = json.loads(text)
        except ValueError as exc:
            raise WireError(
                "We could not parse the JSON body of your request.", code="invalid_json"
            ) from exc
        body = validate(body, websocket=False)
        parent = None
        parent_id = body.get("previous_response_id")
        if parent_id is not None:
            parent = store.responses.get(parent_id)
            if parent is None:
                raise not_found(str(parent_id))
        req = Request(body=body, input=input_items(body), parent=parent)
        plan = make_plan(req, script)
        if plan.failure is not None and plan.failure.stage == "before":
            raise failure_error(plan.failure)
    except WireError as err:
        record.note_sent({"http_status": err.status, "error": err.body()})
        return error_response(err, request_id)

    streaming = bool(body.get("stream"))
    reply = web.StreamResponse(
        headers={
            "Content-Type": "text/event-stream; charset=utf-8",
            "Cache-Control": "no-cache",
            "x-request-id": request_id,
        }
    )
    events: list[JSONObject] = []

    async def emit(event: JSONObject) -> None:
        record.note_sent(event)
        events.append(event)
        if streaming:
            data = json.dumps(event, separators=(",", ":"))
            await reply.write(f"event: {event['type']}\ndata: {data}\n\n".encode())

    def abort() -> None:
        if request.transport is not None:
            request.transport.abort()

    stream = ResponseStream(request=req, plan=plan, emit=emit, abort=abort, pace=pace)
    if streaming:
        await reply.prepare(request)
    try:
        stored = await stream.run()
    except (Dropped, ConnectionResetError):
        return reply
    if stored is not None and body.get("store", True):
        store.put(stream.id, stored)
    if streaming:
        await reply.write_eof()
        return reply
    final = events[-1]["response"] if events and "response" in events[-1] else None
    return web.json_response(final, headers={"x-request-id": request_id})
