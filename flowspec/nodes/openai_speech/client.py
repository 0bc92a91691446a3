"""`POST /v1/audio/speech` over aiohttp: the request body, the two streamed answers (raw PCM,
SSE `speech.audio.delta` events) read as PCM pieces, and HTTP failures as flowspec errors.

The seam is the `aiohttp.ClientSession` the node is given. A bad event (not JSON, no audio,
audio that is not base64) is skipped where it arrives: one garbled line never ends the speech.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import os
from collections.abc import AsyncIterator, Mapping
from typing import Any

import aiohttp

from flowspec import limits
from flowspec.errors import NodeError, RemoteProtocolError
from flowspec.nodes.openai_responses.sse import SseDecoder
from flowspec.nodes.openai_responses.ws import map_errors
from flowspec.spec.models.speech import SpeechNodeSpec, SpeechSettingsSpec

log = logging.getLogger("flowspec.nodes.openai_speech")

SAMPLE_RATE = 24000
"""`response_format: pcm` is 24 kHz, 16-bit, mono."""
LEGACY_MODELS = frozenset({"tts-1", "tts-1-hd"})
READ_BYTES = 4800  # 100 ms
ERROR_BYTES = 65536
"""The most of an error reply that is read."""


class SpeechApiError(RemoteProtocolError):
    """The API refused a request (a non-2xx reply); `status` and OpenAI's `code` say why."""

    def __init__(self, node_id: str, message: str, *, status: int,
                 code: str | None = None) -> None:
        super().__init__(node_id, message)
        self.status = status
        self.code = code


def headers(spec: SpeechNodeSpec, node_id: str) -> dict[str, str]:
    """Authorization (the spec's key, else `OPENAI_API_KEY`), organization, project, then the
    spec's own headers. Raises a fatal NodeError when there is no key at all."""
    key = spec.api_key.get_secret_value() if spec.api_key is not None else os.environ.get(
        "OPENAI_API_KEY", "")
    if not key:
        raise NodeError(node_id, "no API key: set `api_key` or the OPENAI_API_KEY environment "
                        "variable.", fatal=True)
    result = {"Authorization": f"Bearer {key}"}
    if spec.organization:
        result["OpenAI-Organization"] = spec.organization
    if spec.project:
        result["OpenAI-Project"] = spec.project
    result.update(spec.default_headers)
    return result


def request_body(spec: SpeechNodeSpec, settings: SpeechSettingsSpec, text: str) -> dict[str, Any]:
    """One request for `text`. `instructions` never goes to the models that refuse it; a
    `voice_…` id is sent as a custom voice."""
    voice: Any = {"id": settings.voice} if settings.voice.startswith("voice_") else settings.voice
    body: dict[str, Any] = {"model": settings.model, "input": text, "voice": voice,
                            "response_format": "pcm"}
    if settings.instructions and settings.model not in LEGACY_MODELS:
        body["instructions"] = settings.instructions
    if settings.speed is not None:
        body["speed"] = settings.speed
    if spec.stream_format == "sse":
        body["stream_format"] = "sse"
    body.update(spec.extra)
    return body


class SpeechStream:
    """The audio of one request, read with `pcm()` (whole samples only)."""

    def __init__(self, node_id: str, response: aiohttp.ClientResponse, *, sse: bool) -> None:
        self._node_id = node_id
        self._response = response
        self._sse = sse
        self.usage: Mapping[str, Any] | None = None

    async def pcm(self) -> AsyncIterator[bytes]:
        carry = b""
        pieces = self._events() if self._sse else self._body()
        async for piece in pieces:
            data = carry + piece
            usable = len(data) - len(data) % 2
            carry = data[usable:]
            if usable:
                yield data[:usable]

    async def _body(self) -> AsyncIterator[bytes]:
        while True:
            with map_errors(self._node_id, "reading the speech"):
                chunk = await self._response.content.read(READ_BYTES)
            if not chunk:
                return
            yield chunk

    async def _events(self) -> AsyncIterator[bytes]:
        decoder = SseDecoder()
        while not decoder.done:
            try:
                with map_errors(self._node_id, "reading the speech"):
                    raw = await self._response.content.readline()
            except ValueError as exc:  # a line beyond the reader's limit
                raise RemoteProtocolError(self._node_id, f"the speech stream sent an "
                                          f"oversized line: {exc}.") from exc
            data = decoder.feed(raw.decode("utf-8", "replace").rstrip("\r\n")) if raw \
                else decoder.flush()
            if data is not None:
                audio = self._audio_of(data)
                if audio:
                    yield audio
                elif self.usage is not None:
                    return
            if not raw:
                return

    def _audio_of(self, data: str) -> bytes | None:
        try:
            event = limits.loads(data, max_digits=limits.PROVIDER_MAX_NUMBER_DIGITS)
        except ValueError:
            log.warning("%s: ignored a speech event that is not JSON", self._node_id)
            return None
        match event:
            case {"type": "speech.audio.delta", "audio": str(audio)}:
                try:
                    return base64.b64decode(audio, validate=True)
                except (binascii.Error, ValueError):
                    log.warning("%s: ignored speech audio that is not base64", self._node_id)
            case {"type": "speech.audio.done"}:
                usage = event.get("usage")
                self.usage = usage if isinstance(usage, dict) else {}
            case {"type": "error"}:
                error = event.get("error") if isinstance(event.get("error"), dict) else event
                raise RemoteProtocolError(self._node_id, "the speech stream failed: "
                                          f"{error.get('message') or 'unknown error'}.")
            case _:
                log.debug("%s: ignored a speech event: %.80s", self._node_id, data)
        return None

    def close(self) -> None:
        """Drop the connection now: a cancelled request is not read to its end."""
        self._response.close()


async def open_speech(session: aiohttp.ClientSession, url: str, headers: Mapping[str, str],
                      body: Mapping[str, Any], node_id: str) -> SpeechStream:
    """Send one request. Raises SpeechApiError for a non-2xx reply, TransportError when the
    server cannot be reached."""
    sse = body.get("stream_format") == "sse"
    with map_errors(node_id, "POST /audio/speech"):
        response = await session.post(url, data=json.dumps(body), headers={
            **headers, "Content-Type": "application/json",
            "Accept": "text/event-stream" if sse else "application/octet-stream"})
    try:
        if response.status >= 300:
            raise await _refusal(node_id, response)
    except BaseException:
        response.close()
        raise
    return SpeechStream(node_id, response, sse=sse)


async def _refusal(node_id: str, response: aiohttp.ClientResponse) -> SpeechApiError:
    with map_errors(node_id, "reading an error reply"):
        text = await response.content.read(ERROR_BYTES)
    try:
        data = limits.loads(text.decode("utf-8", "replace"),
                            max_digits=limits.PROVIDER_MAX_NUMBER_DIGITS)
    except ValueError:
        data = None
    error = data.get("error") if isinstance(data, dict) else None
    if isinstance(error, dict):
        code = error.get("code") if isinstance(error.get("code"), str) else None
        message = str(error.get("message") or "no message")[:500]
        return SpeechApiError(node_id, f"the speech API answered HTTP {response.status}: "
                              f"{message}" + (f" [{code}]" if code else ""),
                              status=response.status, code=code)
    return SpeechApiError(node_id, f"the speech API answered HTTP {response.status}.",
                          status=response.status)
