"""The bus: typed out-of-band events from sessions to the application (hooks, admin, metrics).

Events are frozen dataclasses, subscribed to by class (a subscription to a base class receives its
subclasses). Handlers are plain callables run synchronously by `publish`, so they must be quick;
`Bus.listen` gives a bounded async stream for consumers that need to await.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar

log = logging.getLogger("flowspec.bus")

E = TypeVar("E", bound="BusEvent")


@dataclass(frozen=True, slots=True, kw_only=True)
class BusEvent:
    """Base of every bus event. `session_id` is empty for events about the executor itself."""

    session_id: str


@dataclass(frozen=True, slots=True, kw_only=True)
class SessionStarted(BusEvent):
    graph: str
    version: int


@dataclass(frozen=True, slots=True, kw_only=True)
class SessionEnded(BusEvent):
    """A session is over. `cancelled` is False when it drained, True when it was cut short."""

    cancelled: bool
    reason: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class NodeFailed(BusEvent):
    """A node raised. The session goes on unless `fatal`."""

    node_id: str
    error: BaseException
    fatal: bool
    during: str  # "start", "handle", "task" or "stop"


@dataclass(frozen=True, slots=True, kw_only=True)
class FramesDropped(BusEvent):
    """A `drop_oldest` edge discarded data frames because its consumer was too slow."""

    edge: str
    count: int


@dataclass(frozen=True, slots=True, kw_only=True)
class SettingsApplied(BusEvent):
    node_id: str
    changed: tuple[str, ...]
    version: int


@dataclass(frozen=True, slots=True, kw_only=True)
class SettingsRejected(BusEvent):
    node_id: str
    version: int
    message: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Metrics(BusEvent):
    """Named measurements from a node: `ttfb_ms`, `processing_ms`, token counts, and so on."""

    node_id: str
    values: Mapping[str, float]


@dataclass(frozen=True, slots=True, kw_only=True)
class ConversationItemCreated(BusEvent):
    node_id: str
    item_id: str
    item: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class ConversationItemUpdated(BusEvent):
    node_id: str
    item_id: str
    item: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class FunctionCallsStarted(BusEvent):
    node_id: str
    calls: tuple[tuple[str, str], ...]  # (call_id, name)


@dataclass(frozen=True, slots=True, kw_only=True)
class CompletionTimeout(BusEvent):
    node_id: str
    timeout_s: float


@dataclass(frozen=True, slots=True, kw_only=True)
class FunctionCallEnded(BusEvent):
    """A tool node answered one call (`node_id` is the tool's). `error` is a one-line reason when
    `ok` is false; `detail` is for logs only (a traceback, an HTTP body excerpt) and never reaches
    the model. `cancelled` calls were cut short by an interruption. `arguments` is the JSON text
    the model sent."""

    node_id: str
    call_id: str
    name: str
    ok: bool
    arguments: str = ""
    error: str = ""
    detail: str = ""
    cancelled: bool = False
    elapsed_ms: float = 0.0


Handler = Callable[[Any], None]


class Subscription:
    """Returned by `Bus.subscribe`; `close()` (or leaving its `with` block) unsubscribes."""

    __slots__ = ("_bus", "_kinds", "_handler")

    def __init__(self, bus: Bus, kinds: tuple[type[BusEvent], ...], handler: Handler) -> None:
        self._bus = bus
        self._kinds = kinds
        self._handler = handler

    def close(self) -> None:
        self._bus._remove(self)

    def __enter__(self) -> Subscription:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Bus:
    """Fan-out of typed events to subscribers. One bus usually serves a whole executor."""

    def __init__(self) -> None:
        self._subs: list[Subscription] = []
        # Publishing resolves handlers per concrete event class once, not per event.
        self._routes: dict[type[BusEvent], tuple[Handler, ...]] = {}

    def subscribe(
        self, handler: Callable[[E], None], *kinds: type[E]
    ) -> Subscription:
        """Call `handler(event)` for every published event that is an instance of one of `kinds`
        (every event when no kind is given)."""
        sub = Subscription(self, kinds or (BusEvent,), handler)
        self._subs.append(sub)
        self._routes.clear()
        return sub

    def publish(self, event: BusEvent) -> None:
        """Run the matching handlers now. A failing handler is logged and the others still run."""
        handlers = self._routes.get(type(event))
        if handlers is None:
            handlers = self._route(type(event))
        for handler in handlers:
            try:
                handler(event)
            except Exception:  # subscribers are application code: a supervision boundary
                log.exception("bus handler %r failed on %s", handler, type(event).__name__)

    @asynccontextmanager
    async def listen(
        self, *kinds: type[E], maxsize: int = 1024
    ) -> AsyncIterator[asyncio.Queue[E]]:
        """Receive matching events through a bounded queue. When the listener falls behind, the
        oldest events are dropped rather than blocking the publishers."""
        queue: asyncio.Queue[E] = asyncio.Queue(maxsize)

        def put(event: E) -> None:
            if queue.full():
                queue.get_nowait()
            queue.put_nowait(event)

        with self.subscribe(put, *kinds):
            yield queue

    def _route(self, kind: type[BusEvent]) -> tuple[Handler, ...]:
        handlers = tuple(s._handler for s in self._subs if issubclass(kind, s._kinds))
        self._routes[kind] = handlers
        return handlers

    def _remove(self, sub: Subscription) -> None:
        if sub in self._subs:
            self._subs.remove(sub)
            self._routes.clear()


@dataclass(frozen=True, slots=True, kw_only=True)
class ProviderError(BusEvent):
    """A model provider reported an error: an `error` event, a failed response, or a connection
    that dropped. The node carries on (reconnecting if needed) unless `fatal`."""

    node_id: str
    message: str
    code: str | None = None
    type: str | None = None
    fatal: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class ModelConnected(BusEvent):
    """A model node's connection is ready; `attempt` > 1 after a reconnect, which re-seeded the
    conversation with `seeded` items."""

    node_id: str
    attempt: int
    seeded: int = 0


# -- added with the transports and the server ---------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class ClientConnected(BusEvent):
    """A transport learnt who is on the line (Twilio's `start`: stream and call ids, custom
    parameters)."""

    node_id: str
    transport: str
    details: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class ClientMessageRejected(BusEvent):
    """A client message was dropped: a transport could not use it (non-JSON, unknown, malformed,
    beyond the client bounds), or a model node could not deliver it (`input_not_delivered`)."""

    node_id: str
    code: str
    message: str


@dataclass(frozen=True, slots=True, kw_only=True)
class SpecReloaded(BusEvent):
    """A served spec was changed (hot reload); `ok` is False when the change was rejected,
    `codes` then the codes of the reasons (`limit.depth`, `admin.privileged`, ...)."""

    graph: str
    version: int
    ok: bool = True
    message: str = ""
    codes: tuple[str, ...] = ()


# -- added with hot reload ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class SettingsConfirmed(BusEvent):
    """The provider's `session.updated` echo holds what settings `version` asked for (the ACK
    after a `SettingsApplied`)."""

    node_id: str
    version: int


@dataclass(frozen=True, slots=True, kw_only=True)
class SettingsDeferred(BusEvent):
    """Part of settings `version` cannot apply to this session (the voice, once audio was
    produced); `fields` name it. It applies to new sessions."""

    node_id: str
    version: int
    fields: tuple[str, ...]
    message: str
