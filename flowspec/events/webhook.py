"""`events.webhook`: a call's events POSTed as signed JSON, never slowing or failing the call.

Each event is one JSON object:

    {"id": "evt_…", "type": "transcript", "time": "2026-…Z", "session_id": "…",
     "bot": "support-line", "version": 3, "metadata": {…}, "data": {…}}

with `data` by type: `call.started` {transport, variables}; `transcript` {role, text, item_id,
interrupted}; `tool.called` {name, call_id, arguments, ok, error, elapsed_ms};
`flow.transition` {from, to, tool, refused} (a refused one: the call stayed in `from`); `call.ended`
{reason, detail, duration_s, transcript: [{role, text}], usage: {kind: tokens}}. Each POST
carries `X-Flowspec-Event`, `X-Flowspec-Delivery` (the event id: a retried event keeps it, so a
receiver can ignore a repeat) and, with a `secret`, `X-Flowspec-Signature`
(`flowspec.events.signing`).

The node reads the session's bus; it has no ports. Its events wait in the session's bounded
queue (`flowspec.events.delivery`); at the end of the call what is left, `call.ended` last, has
a few seconds to go out while the session winds down, after the caller is gone.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import time
import uuid
from dataclasses import dataclass
from typing import Any

import aiohttp
from aiohttp.abc import AbstractResolver
from yarl import URL

from flowspec import limits
from flowspec.conversation.events import (
    CallEnding,
    CallStarted,
    FlowTransition,
    FlowTransitionRefused,
    TranscriptItem,
)
from flowspec.conversation.template import render_all
from flowspec.errors import UsageError
from flowspec.events.delivery import Delivery, Outgoing, Post, PostFailed
from flowspec.events.signing import SIGNATURE_HEADER, sign
from flowspec.frames import Frame
from flowspec.nodes.netguard import GuardedClient, PrivateAddressRefused
from flowspec.nodes.netpolicy import url_problem
from flowspec.runtime.bus import BusEvent, FunctionCallEnded, Metrics, SessionStarted, Subscription
from flowspec.runtime.node import Context
from flowspec.spec.models.events import WebhookSpec

log = logging.getLogger("flowspec.events")

FLUSH_BUDGET_S = 4.0
"""How long the events still queued when a call ends may take to go out (within the session's
stop timeout)."""
MAX_TRANSCRIPT_ITEMS = 2_000
"""Most items `call.ended` repeats; a longer call's transcript went out item by item anyway."""
MAX_ARGUMENT_CHARS = 20_000


@dataclass(frozen=True, slots=True, kw_only=True)
class WebhookEventSettled(BusEvent):
    """What became of one event: `outcome` is `delivered`, `dropped` (the queue was full, or
    the call ended before it could go) or `failed` (given up after retries, or refused)."""

    node_id: str
    event: str
    outcome: str


class WebhookNode:
    """One session's `events.webhook`. `resolver` is the host name lookup the network policy
    guards (aiohttp's default when None); `post` replaces the HTTP request itself (a scenario
    run keeps the events instead of sending them)."""

    def __init__(self, ctx: Context, *, resolver: AbstractResolver | None = None,
                 flush_budget_s: float = FLUSH_BUDGET_S, post: Post | None = None) -> None:
        if not isinstance(ctx.spec, WebhookSpec):
            raise UsageError(f"Node {ctx.node_id!r} needs an events.webhook spec, "
                             f"not {ctx.spec!r}.")
        self.ctx = ctx
        self.spec: WebhookSpec = ctx.spec
        self._client = GuardedClient(resolver)
        self._wanted = frozenset(self.spec.events)
        self.delivery = Delivery(post or self._post, self._headers, capacity=self.spec.queue_size,
                                 max_retries=self.spec.max_retries,
                                 backoff_s=self.spec.backoff_s, on_settled=self._settled)
        self._subscription: Subscription | None = None
        self._bot = ""
        self._version = 0
        self._metadata: dict[str, Any] = dict(self.spec.metadata)
        self._transcript: list[dict[str, str]] = []
        self._usage: dict[str, float] = {}
        self._began: float | None = None
        self._ending: CallEnding | None = None
        self._ended = False
        self._flush_budget_s = flush_budget_s

    async def start(self) -> None:
        self._subscription = self.ctx.bus.subscribe(
            self._on_event, SessionStarted, CallStarted, TranscriptItem, FunctionCallEnded,
            FlowTransition, FlowTransitionRefused, Metrics, CallEnding)
        self.ctx.spawn(self.delivery.run(), name=f"flowspec:{self.ctx.node_id}:webhook")

    async def handle(self, frame: Frame, port: str) -> None:
        """No edge reaches a webhook; it reads the bus."""

    async def stop(self) -> None:
        if self._subscription is not None:
            self._subscription.close()
            self._subscription = None
        self._call_ended()
        await self.delivery.flush(self._flush_budget_s)
        await self._client.close()
        tally = self.delivery.tally
        if tally.dropped or tally.failed:
            log.warning("session %s webhook %s: %d events delivered, %d dropped, %d failed "
                        "(last: %s)", self.ctx.session_id, self.ctx.node_id, tally.delivered,
                        tally.dropped, tally.failed, tally.last_error)

    # -- events from the bus -----------------------------------------------------------------

    def _on_event(self, event: BusEvent) -> None:
        if event.session_id != self.ctx.session_id or self._ended:
            return
        if isinstance(event, SessionStarted):
            self._bot, self._version = event.graph, event.version
        elif isinstance(event, CallStarted):
            self._began = time.monotonic()
            self._metadata = render_all(dict(self.spec.metadata), event.variables)
            self._send("call.started", {"transport": event.transport,
                                        "variables": _plain(event.variables)})
        elif isinstance(event, TranscriptItem):
            if len(self._transcript) < MAX_TRANSCRIPT_ITEMS:
                self._transcript.append({"role": event.role, "text": event.text})
            self._send("transcript", {"role": event.role, "text": event.text,
                                      "item_id": event.item_id,
                                      "interrupted": event.interrupted})
        elif isinstance(event, FunctionCallEnded):
            self._send("tool.called", {
                "name": event.name, "call_id": event.call_id,
                "arguments": _arguments(event.arguments), "ok": event.ok,
                "error": event.error, "cancelled": event.cancelled,
                "elapsed_ms": round(event.elapsed_ms, 1)})
        elif isinstance(event, FlowTransition):
            self._send("flow.transition", {"from": event.source, "to": event.target,
                                           "tool": event.tool, "refused": False})
        elif isinstance(event, FlowTransitionRefused):
            self._send("flow.transition", {"from": event.source, "to": event.target,
                                           "tool": "", "refused": True})
        elif isinstance(event, Metrics):
            for name, value in event.values.items():
                if name.endswith("_tokens") and value > 0:
                    kind = name.removesuffix("_tokens")
                    self._usage[kind] = self._usage.get(kind, 0) + value
        elif isinstance(event, CallEnding) and self._ending is None:
            self._ending = event

    def _call_ended(self) -> None:
        if self._ended:
            return
        ending = self._ending
        self._send("call.ended", {
            "reason": ending.reason if ending else "ended",
            "detail": ending.detail if ending else "",
            "duration_s": round(time.monotonic() - self._began, 3) if self._began else 0.0,
            "transcript": list(self._transcript),
            "usage": {kind: int(count) for kind, count in sorted(self._usage.items())},
        })
        self._ended = True

    def _send(self, kind: str, data: dict[str, Any]) -> None:
        if kind not in self._wanted:
            return
        event_id = f"evt_{uuid.uuid4().hex}"
        body = {"id": event_id, "type": kind,
                "time": dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds")
                .replace("+00:00", "Z"),
                "session_id": self.ctx.session_id, "bot": self._bot, "version": self._version,
                "metadata": self._metadata, "data": data}
        encoded = json.dumps(body, ensure_ascii=False, separators=(",", ":"),
                             default=str).encode()
        self.delivery.offer(Outgoing(kind, event_id, encoded))

    def _settled(self, event: Outgoing, outcome: str) -> None:
        self.ctx.publish(WebhookEventSettled(session_id=self.ctx.session_id,
                                             node_id=self.ctx.node_id, event=event.type,
                                             outcome=outcome))

    # -- the wire ----------------------------------------------------------------------------

    def _headers(self, event: Outgoing) -> dict[str, str]:
        headers = {**self.spec.headers, "Content-Type": "application/json",
                   "User-Agent": "flowspec-webhook", "X-Flowspec-Event": event.type,
                   "X-Flowspec-Delivery": event.id}
        secret = self.spec.secret.get_secret_value() if self.spec.secret is not None else ""
        if secret:  # an empty one (`${SECRET:-}` unset) signs nothing
            headers[SIGNATURE_HEADER] = sign(secret, event.body)
        return headers

    async def _post(self, body: bytes, headers: dict[str, str]) -> int:
        spec = self.spec
        problem = url_problem(spec.url, spec.allow_private_network)
        if problem is not None:
            raise PostFailed(f"{problem.host} {problem.reason}" if problem.kind ==
                             "private-network" else "the URL carries credentials")
        http = await self._client.session(allow_private=spec.allow_private_network)
        try:
            async with http.post(URL(spec.url), data=body, headers=headers,
                                 allow_redirects=False,
                                 timeout=aiohttp.ClientTimeout(total=spec.timeout_s)) as reply:
                await reply.read()
                return reply.status
        except TimeoutError:
            raise PostFailed(f"no answer in {spec.timeout_s:g} s") from None
        except aiohttp.ClientConnectorError as exc:
            if isinstance(exc.os_error, PrivateAddressRefused):
                raise PostFailed(str(exc.os_error.strerror)) from None
            raise PostFailed(f"{type(exc).__name__}: {exc}") from None
        except aiohttp.ClientError as exc:
            raise PostFailed(f"{type(exc).__name__}: {exc}") from None


def _arguments(text: str) -> Any:
    if len(text) > MAX_ARGUMENT_CHARS:
        return text[:MAX_ARGUMENT_CHARS]
    try:
        return limits.loads(text, max_digits=limits.PROVIDER_MAX_NUMBER_DIGITS) if text else {}
    except ValueError:
        return text


def _plain(values: Any) -> dict[str, Any]:
    return {str(k): v for k, v in dict(values).items()}
