"""Responses over HTTP: `POST /v1/responses` with aiohttp, the SSE decoder, and the mapping of
HTTP failures into flowspec errors. The seam is the `aiohttp.ClientSession` passed in."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Any

import aiohttp

from flowspec import limits
from flowspec.errors import AccessRefused
from flowspec.nodes.openai_responses.protocol import (
    JSONObject,
    ResponsesApiError,
    ServerEvent,
    error_of,
    parse_event,
)
from flowspec.nodes.openai_responses.ws import map_errors
from flowspec.nodes.refusal import error_text, refuses_access

log = logging.getLogger("flowspec.nodes.openai_responses")


class SseDecoder:
    """Server-sent events, line by line: `data:` lines joined with newlines, `:` comments and
    other fields ignored, a blank line ends an event. `[DONE]` is honoured, never required."""

    def __init__(self) -> None:
        self._data: list[str] = []
        self.done = False

    def feed(self, line: str) -> str | None:
        """Feed one line (without its line break); returns an event's data when one ends."""
        if not line:
            data, self._data = self._data, []
            if not data:
                return None
            text = "\n".join(data)
            if text.strip() == "[DONE]":
                self.done = True
                return None
            return text
        if line.startswith(":"):
            return None
        name, _, value = line.partition(":")
        if name == "data":
            self._data.append(value[1:] if value.startswith(" ") else value)
        return None

    def flush(self) -> str | None:
        """The last event of a stream that ended without a blank line."""
        return self.feed("")


class SseStream:
    """The events of one streamed response, read with `next_event` until it returns None."""

    def __init__(self, node_id: str, response: aiohttp.ClientResponse) -> None:
        self._node_id = node_id
        self._response = response
        self._decoder = SseDecoder()
        self._ended = False

    async def next_event(self) -> ServerEvent | None:
        while not self._ended and not self._decoder.done:
            with map_errors(self._node_id, "reading the stream"):
                raw = await self._response.content.readline()
            if not raw:
                self._ended = True
                data = self._decoder.flush()
            else:
                data = self._decoder.feed(raw.decode("utf-8").rstrip("\r\n"))
            if data is None:
                continue
            try:
                return parse_event(limits.loads(data, max_depth=None,
                                                max_digits=limits.PROVIDER_MAX_NUMBER_DIGITS))
            except ValueError:
                log.warning("%s: ignored an SSE event that is not JSON", self._node_id)
        return None

    def close(self) -> None:
        """Drop the connection now (a cancelled stream must not be read to its end)."""
        self._response.close()


async def open_stream(session: aiohttp.ClientSession, url: str, headers: Mapping[str, str],
                      body: JSONObject, node_id: str) -> SseStream:
    """POST `body` with `stream: true`. Raises ResponsesApiError for a non-2xx reply."""
    with map_errors(node_id, "POST /responses"):
        response = await session.post(url, data=json.dumps({**body, "stream": True}),
                                      headers={**headers, "Accept": "text/event-stream"})
    try:
        await _check(node_id, response)
    except BaseException:
        response.close()
        raise
    return SseStream(node_id, response)


async def post_json(session: aiohttp.ClientSession, url: str, headers: Mapping[str, str],
                    body: JSONObject, node_id: str) -> JSONObject:
    """POST `body` without streaming and return the Response object."""
    with map_errors(node_id, "POST /responses"):
        async with session.post(url, data=json.dumps({**body, "stream": False}),
                                headers=dict(headers)) as response:
            await _check(node_id, response)
            text = await response.text()
    try:
        data: Any = limits.loads(text, max_depth=None,
                                 max_digits=limits.PROVIDER_MAX_NUMBER_DIGITS)
    except ValueError:
        data = None
    if not isinstance(data, dict):
        raise ResponsesApiError(node_id, "the API answered with something other than a JSON "
                                "object.")
    return data


async def _check(node_id: str, response: aiohttp.ClientResponse) -> None:
    if response.status < 300:
        return
    with map_errors(node_id, "reading an error reply"):
        text = await response.text()
    try:
        data = limits.loads(text, max_depth=None, max_digits=limits.PROVIDER_MAX_NUMBER_DIGITS)
    except ValueError:
        data = None
    error = error_of(data) if isinstance(data, dict) else None
    code = error.code if error is not None else None
    if refuses_access(code, error.type if error is not None else None, response.status):
        # Every request would be refused the same way (a spent quota too): the call cannot go on.
        raise AccessRefused(node_id, "the model could not be used: "
                            f"{error_text(response.status, text.encode())}.", fatal=True,
                            code=code)
    if error is not None:
        raise ResponsesApiError(
            node_id, f"the API answered HTTP {response.status}: {error.message}"
            + (f" [{error.code}]" if error.code else ""), code=error.code, status=response.status)
    raise ResponsesApiError(node_id, f"the API answered HTTP {response.status}.",
                            status=response.status)

