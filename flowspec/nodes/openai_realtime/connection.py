"""The Realtime WebSocket seam: a `Connector` opens a `WireSocket` of JSON text frames.

The default connector uses aiohttp; tests and embedders may pass their own. aiohttp's
exceptions are mapped here to `TransportError`, so they never reach the node or the executor.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator, Mapping
from typing import Any, Protocol
from urllib.parse import urlencode, urlsplit, urlunsplit

import aiohttp

from flowspec import limits
from flowspec.errors import AccessRefused, TransportError
from flowspec.nodes.refusal import ACCESS_STATUSES, handshake_refusal
from flowspec.spec.models.openai_common import OpenAIClientSpec

# One encoder for every event: `json.dumps` with `separators` builds a new one per call.
_ENCODER = json.JSONEncoder(separators=(",", ":"))


def encode(value: Any) -> str:
    """Compact JSON, as every client event goes on the wire."""
    return _ENCODER.encode(value)


class EncodedEvent(dict[str, Any]):
    """A client event whose JSON text is made already: a settings change reaches every live
    call with the same partial session, encoded once for all of them. Any socket may read it as
    the event it is; the aiohttp socket sends the text."""

    __slots__ = ("text",)

    def __init__(self, event: Mapping[str, Any], text: str) -> None:
        super().__init__(event)
        self.text = text


class WireSocket(Protocol):
    """One open connection. `receive` returns the next JSON object, or None once closed."""

    async def send(self, event: Mapping[str, Any]) -> None: ...

    async def receive(self) -> dict[str, Any] | None: ...

    async def close(self) -> None: ...


class Connector(Protocol):
    async def __call__(self, url: str, headers: Mapping[str, str], node_id: str) -> WireSocket:
        """Open `url`; raises TransportError when the server cannot be reached or refuses."""
        ...


_ERRORS = (aiohttp.ClientError, OSError, TimeoutError)


def transport_error(node_id: str, doing: str, exc: BaseException) -> TransportError:
    return TransportError(node_id, f"{doing} failed: {exc or type(exc).__name__}.")


@contextlib.contextmanager
def map_errors(node_id: str, doing: str) -> Iterator[None]:
    try:
        yield
    except _ERRORS as exc:
        raise transport_error(node_id, doing, exc) from exc


class AiohttpSocket:
    """A `WireSocket` over an aiohttp client WebSocket, owning its client session."""

    def __init__(self, http: aiohttp.ClientSession, ws: aiohttp.ClientWebSocketResponse,
                 node_id: str) -> None:
        self._http = http
        self._ws = ws
        self._node_id = node_id

    async def send(self, event: Mapping[str, Any]) -> None:
        if self._ws.closed:
            raise TransportError(self._node_id, "the model connection is closed.")
        # Mapped by hand, not with `map_errors`: a context manager per appended audio frame
        # costs more than encoding it.
        try:
            await self._ws.send_str(event.text if type(event) is EncodedEvent
                                    else _ENCODER.encode(event))
        except _ERRORS as exc:
            raise transport_error(self._node_id, "sending to the model", exc) from exc

    async def receive(self) -> dict[str, Any] | None:
        while True:
            with map_errors(self._node_id, "receiving from the model"):
                message = await self._ws.receive()
            if message.type in (aiohttp.WSMsgType.TEXT, aiohttp.WSMsgType.BINARY):
                data = message.data
                text = data.decode("utf-8", "replace") if isinstance(data, bytes) else data
                try:
                    value = limits.loads(text, max_depth=None,
                                         max_digits=limits.PROVIDER_MAX_NUMBER_DIGITS)
                except ValueError:
                    continue  # a garbled frame is not worth ending the conversation for
                if isinstance(value, dict):
                    return value
                continue
            if message.type == aiohttp.WSMsgType.ERROR:
                raise TransportError(self._node_id,
                                     f"the model connection failed: {data_of(message)}.")
            return None  # CLOSE, CLOSING, CLOSED

    async def close(self) -> None:
        try:
            with map_errors(self._node_id, "closing the model connection"):
                await self._ws.close()
        finally:
            await self._http.close()


def data_of(message: aiohttp.WSMessage) -> str:
    return str(message.data or message.extra or "unknown error")


async def aiohttp_connect(url: str, headers: Mapping[str, str], node_id: str) -> WireSocket:
    """The default `Connector`. Frames have no size limit: a retrieved item carries its audio."""
    http = aiohttp.ClientSession()
    try:
        try:
            ws = await http.ws_connect(url, headers=dict(headers), max_msg_size=0,
                                       autoping=True, heartbeat=20.0)
        except aiohttp.WSServerHandshakeError as exc:
            if exc.status not in ACCESS_STATUSES:
                raise transport_error(node_id, "connecting to the model", exc) from exc
            reason = await handshake_refusal(http, url, headers, exc.status)
            raise AccessRefused(node_id, f"the model refused the connection: {reason}.") \
                from exc
        except _ERRORS as exc:
            raise transport_error(node_id, "connecting to the model", exc) from exc
    except BaseException:
        await http.close()
        raise
    return AiohttpSocket(http, ws, node_id)


def realtime_url(base_url: str, model: str) -> str:
    """The WebSocket URL for `model`: http(s) base URLs become ws(s), the model joins the query."""
    parts = urlsplit(base_url)
    scheme = {"http": "ws", "https": "wss"}.get(parts.scheme, parts.scheme)
    query = "&".join(q for q in (parts.query, urlencode({"model": model})) if q)
    return urlunsplit((scheme, parts.netloc, parts.path, query, parts.fragment))


def request_headers(spec: OpenAIClientSpec, dialect_headers: Mapping[str, str]) -> dict[str, str]:
    """Authorization (the spec's key, else `OPENAI_API_KEY`), the dialect's headers, the
    organization and project, then the spec's own headers, which win."""
    key = spec.api_key.get_secret_value() if spec.api_key is not None \
        else os.environ.get("OPENAI_API_KEY", "")
    headers = {"Authorization": f"Bearer {key}", **dialect_headers}
    if spec.organization:
        headers["OpenAI-Organization"] = spec.organization
    if spec.project:
        headers["OpenAI-Project"] = spec.project
    headers.update(spec.default_headers)
    return headers
