"""Responses WebSocket mode: the wire seam (`Connector` -> `WireSocket`), its aiohttp default, and
`ResponsesSocket`, which keeps one connection's requests in order.

The server answers a connection's requests one after another (one lane, FIFO), and stream events
carry no reliable response id. So the socket keeps a queue of the requests it sent and attributes
every event to the oldest unfinished one; events of an abandoned (interrupted) request are
dropped as they arrive. The next request can therefore go out at once after a `response.cancel`:
nothing waits for the cancelled response to drain.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Protocol

import aiohttp

from flowspec import limits
from flowspec.errors import AccessRefused, TransportError
from flowspec.nodes.openai_responses.protocol import (
    BENIGN_CODES,
    ApiError,
    JSONObject,
    ResponseCreated,
    ResponseFinished,
    ServerEvent,
    dumps,
    parse_event,
)
from flowspec.nodes.refusal import ACCESS_STATUSES, handshake_refusal

log = logging.getLogger("flowspec.nodes.openai_responses")


class WireSocket(Protocol):
    """One open WebSocket carrying JSON text messages."""

    async def send_text(self, text: str) -> None:
        """Raises TransportError when the connection is gone."""
        ...

    async def receive_text(self) -> str:
        """The next text message. Raises TransportError when the connection closes."""
        ...

    async def close(self) -> None: ...


Connector = Callable[[str, Mapping[str, str]], Awaitable[WireSocket]]
"""Opens a WebSocket to a URL with the given headers; raises TransportError when it cannot."""


@contextmanager
def map_errors(node_id: str, doing: str) -> Iterator[None]:
    """aiohttp and socket errors become TransportError (without headers: they hold the key)."""
    try:
        yield
    except aiohttp.WSServerHandshakeError as exc:
        raise TransportError(node_id, f"{doing} failed: the server answered HTTP "
                             f"{exc.status}.") from exc
    except (aiohttp.ClientError, OSError) as exc:
        raise TransportError(node_id, f"{doing} failed: {type(exc).__name__}: {exc}.") from exc


class AiohttpSocket:
    """`WireSocket` over aiohttp; owns its ClientSession."""

    def __init__(self, node_id: str, session: aiohttp.ClientSession,
                 ws: aiohttp.ClientWebSocketResponse) -> None:
        self._node_id = node_id
        self._session = session
        self._ws = ws

    async def send_text(self, text: str) -> None:
        if self._ws.closed:
            raise TransportError(self._node_id, "the WebSocket is closed.")
        with map_errors(self._node_id, "sending"):
            await self._ws.send_str(text)

    async def receive_text(self) -> str:
        with map_errors(self._node_id, "receiving"):
            message = await self._ws.receive()
        if message.type is aiohttp.WSMsgType.TEXT:
            return str(message.data)
        if message.type is aiohttp.WSMsgType.BINARY:
            return bytes(message.data).decode("utf-8", errors="replace")
        code = self._ws.close_code
        raise TransportError(self._node_id, f"the WebSocket closed (code {code}).")

    async def close(self) -> None:
        try:
            await self._ws.close()
        finally:
            await self._session.close()


def aiohttp_connector(node_id: str, *, close_timeout: float = 2.0) -> Connector:
    """The default connector: one aiohttp ClientSession per connection."""

    async def connect(url: str, headers: Mapping[str, str]) -> WireSocket:
        session = aiohttp.ClientSession()
        try:
            with map_errors(node_id, "connecting"):
                try:
                    ws = await session.ws_connect(
                        url, headers=dict(headers), max_msg_size=0, autoping=True,
                        timeout=aiohttp.ClientWSTimeout(ws_close=close_timeout))
                except aiohttp.WSServerHandshakeError as exc:
                    if exc.status not in ACCESS_STATUSES:
                        raise
                    reason = await handshake_refusal(session, url, headers, exc.status)
                    raise AccessRefused(node_id, f"connecting failed: {reason}.") from exc
        except BaseException:
            await session.close()
            raise
        return AiohttpSocket(node_id, session, ws)

    return connect


@dataclass(slots=True, eq=False)
class Pending:
    """A `response.create` this connection sent and has not seen the end of."""

    response_id: str | None = None
    abandoned: bool = False
    finished: bool = False


@dataclass(frozen=True, slots=True)
class Backoff:
    """Reconnect policy: `attempts` tries, waiting `first`, then doubling up to `limit` seconds."""

    attempts: int = 3
    first: float = 0.5
    limit: float = 4.0

    def delays(self) -> Iterator[float]:
        delay = 0.0
        for attempt in range(self.attempts):
            yield delay
            delay = min(self.limit, self.first * 2 ** attempt)


DEFAULT_BACKOFF = Backoff()


class ResponsesSocket:
    """One session's Responses WebSocket: connects, reconnects with backoff, sends requests and
    hands each reader only the events of its own request. Not safe for two concurrent readers."""

    def __init__(self, node_id: str, url: str, headers: Mapping[str, str], connect: Connector,
                 *, backoff: Backoff = DEFAULT_BACKOFF) -> None:
        self._node_id = node_id
        self._url = url
        self._headers = headers
        self._connect = connect
        self._backoff = backoff
        self._ws: WireSocket | None = None
        self._queue: deque[Pending] = deque()
        self.epoch = 0  # bumped by every (re)connect: the server's cache belongs to one epoch
        self.connects = 0

    @property
    def connected(self) -> bool:
        return self._ws is not None

    async def connect(self) -> None:
        """Open the connection, trying `backoff.attempts` times. Raises the last TransportError."""
        await self.close()
        error: TransportError | None = None
        for delay in self._backoff.delays():
            if delay:
                await asyncio.sleep(delay)
            try:
                self._ws = await self._connect(self._url, self._headers)
            except AccessRefused:
                raise  # the same key would be refused again
            except TransportError as exc:
                # Each retry is news only to someone watching closely; the last failure is
                # raised and reported once by whoever started the connection.
                log.info("%s: %s; trying again", self._node_id, exc)
                error = exc
                continue
            self.epoch += 1
            self.connects += 1
            return
        assert error is not None
        raise error

    async def close(self) -> None:
        ws, self._ws = self._ws, None
        self._queue.clear()  # whatever was in flight died with the connection
        if ws is not None:
            try:
                await ws.close()
            except TransportError as exc:
                log.debug("%s: closing: %s", self._node_id, exc)

    async def create(self, body: JSONObject) -> Pending:
        """Send `response.create`; the returned handle reads its events with `next_event`."""
        if self._ws is None:
            await self.connect()
        pending = Pending()
        self._queue.append(pending)
        await self._send({"type": "response.create", **body})
        return pending

    async def abandon(self, pending: Pending, *, cancel: bool = True) -> None:
        """The reader of `pending` went away: its remaining events are dropped as they arrive and,
        with `cancel`, a running response is cancelled (at once, or as soon as it is created).
        Waits for nothing from the server."""
        if pending.finished or pending.abandoned:
            return
        pending.abandoned = True
        if not cancel:
            pending.finished = True  # nothing to cancel: only its leftovers are to be dropped
        elif pending.response_id is not None:
            await self._cancel(pending.response_id)

    async def next_event(self, pending: Pending) -> ServerEvent:
        """The next event of `pending`'s response. Its terminal event (or an error before the
        response started) finishes it. Raises TransportError when the connection fails."""
        while True:
            if self._ws is None:
                raise TransportError(self._node_id, "the WebSocket is not connected.")
            text = await self._ws.receive_text()
            try:
                data = limits.loads(text, max_depth=None,
                                    max_digits=limits.PROVIDER_MAX_NUMBER_DIGITS)
            except ValueError:
                log.warning("%s: ignored a message that is not JSON", self._node_id)
                continue
            event = parse_event(data)
            owner = await self._route(event)
            if owner is pending:
                return event

    async def _route(self, event: ServerEvent) -> Pending | None:
        queue = self._queue
        if isinstance(event, ApiError) and event.code in BENIGN_CODES:
            log.debug("%s: %s", self._node_id, event.message)
            return None
        if isinstance(event, ResponseCreated):
            # One lane, no overlap: a new response means the previous one is over.
            while queue and queue[0].response_id is not None:
                queue.popleft().finished = True
            if queue:
                queue[0].response_id = event.response_id
                if queue[0].abandoned and not queue[0].finished:
                    await self._cancel(event.response_id)
        if not queue:
            log.debug("%s: dropped an event for no request: %r", self._node_id, event)
            return None
        owner = queue[0]
        if isinstance(event, ResponseFinished) or (
                isinstance(event, ApiError) and owner.response_id is None):
            queue.popleft().finished = True
        return None if owner.abandoned else owner

    async def _cancel(self, response_id: str) -> None:
        try:
            await self._send({"type": "response.cancel", "response_id": response_id})
        except TransportError as exc:  # the reconnect of the next request deals with it
            log.debug("%s: cancel not sent: %s", self._node_id, exc)

    async def _send(self, message: JSONObject) -> None:
        if self._ws is None:
            raise TransportError(self._node_id, "the WebSocket is not connected.")
        await self._ws.send_text(dumps(message))
