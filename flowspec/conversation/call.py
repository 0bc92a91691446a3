"""`Call`: what one session knows about its call beyond frames — its variables, when it began,
why it is ending — shared by its transport, its model and its conversation driver.

The transport learns who is calling (a page's query string at once; Twilio's `start` message a
moment after the socket opens) and calls `begin`; model nodes await `ready` before they contact
the provider, so the first `session.update` already carries instructions filled for this
caller, and a call whose values break the spec is refused before anything is sent upstream.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from flowspec.conversation.clock import Clock, LoopClock
from flowspec.conversation.events import CallEnding, CallRefused, CallStarted
from flowspec.conversation.spoken import SpokenText
from flowspec.conversation.template import render, render_all
from flowspec.conversation.variables import CallFacts, VariableRefused, resolve
from flowspec.runtime.bus import Bus
from flowspec.spec.conversation_rules import conversation_model
from flowspec.spec.models.conversation import ConversationSpec, VariableSpec
from flowspec.spec.models.flow import FlowSpec
from flowspec.spec.models.tools import ToolNodeSpec

if TYPE_CHECKING:
    from flowspec.spec.models.graph import GraphSpec

log = logging.getLogger("flowspec.conversation")

DETAILS_TIMEOUT_S = 10.0
"""How long a transport that reports its caller (Twilio's `start`) may take to do so."""


class Call:
    """One session's call. `begin` once; `end` as often as asked (the first reason wins)."""

    def __init__(self, session_id: str, spec: GraphSpec, bus: Bus, *,
                 request_end: Callable[[str], None], clock: Clock | None = None,
                 preset: Mapping[str, Any] | None = None) -> None:
        self.session_id = session_id
        self._declared: Mapping[str, VariableSpec] = spec.variables
        self.conversation: ConversationSpec | None = spec.conversation
        """The conversation as the spec now says (a live change replaces it)."""
        self.flow: FlowSpec | None = getattr(spec, "flow", None)
        """The flow as the spec now says (a live change replaces it)."""
        self.model = conversation_model(spec)
        """The model node the conversation (and flow) belongs to (None: neither)."""
        self.tool_names = {node_id: node.function_name(node_id)
                           for node_id, node in spec.nodes.items()
                           if isinstance(node, ToolNodeSpec)} if self.flow else {}
        """Tool node id → the function name the model sees (what flow states list by id)."""
        self._bus = bus
        self._request_end = request_end
        self.clock: Clock = clock or LoopClock()
        self.preset: dict[str, Any] = dict(preset or {})
        """Values given when the session was made (`--var`), under what the connection says."""
        self._ready = asyncio.Event()
        self._refused: VariableRefused | None = None
        self.variables: dict[str, Any] = {}
        self.started_at: float | None = None
        self.started_wall: dt.datetime | None = None
        self.end_reason = ""
        self.end_detail = ""
        self.transport = ""
        self.playback_reported = False
        """The entry transport reports what the caller has heard (`reports_playback`)."""
        self.spoken = SpokenText()
        """What a speech node said aloud (a cascade), and how much of it was heard."""

    @property
    def speaks_first(self) -> bool:
        """The bot opens the call (`opening: {mode: speak_first}`): a caller that is a file or
        a script hears it out before talking."""
        opening = self.conversation.opening if self.conversation is not None else None
        return opening is not None and opening.mode == "speak_first"

    @property
    def began(self) -> bool:
        return self._ready.is_set()

    def begin(self, supplied: Mapping[str, Any], *, transport: str, caller: str = "",
              called: str = "") -> dict[str, Any]:
        """Resolve this call's variables from what the connection `supplied`. Raises
        VariableRefused (the call is then refused: its models never connect, and the session is
        asked to end with that reason) when they break the spec's declaration."""
        if self._refused is not None:
            raise self._refused
        if self._ready.is_set():
            return self.variables
        self.transport = transport
        self.started_wall = dt.datetime.now(dt.UTC)
        facts = CallFacts(self.session_id, caller=caller, called=called,
                          started=self.started_wall)
        try:
            self.variables = resolve(self._declared, {**self.preset, **supplied}, facts)
        except VariableRefused as exc:
            self.refuse(exc)
            raise
        self.started_at = self.clock.now()
        self._ready.set()
        self._bus.publish(CallStarted(session_id=self.session_id, transport=transport,
                                      variables=dict(self.variables)))
        return self.variables

    def refuse(self, exc: VariableRefused) -> None:
        log.warning("session %s refused: %s", self.session_id, exc)
        if self._refused is None and not self._ready.is_set():
            self._refused = exc
            self._ready.set()
        self._bus.publish(CallRefused(session_id=self.session_id, code=exc.code,
                                      message=str(exc)))
        self.end("refused", str(exc))

    async def ready(self, timeout_s: float = DETAILS_TIMEOUT_S) -> dict[str, Any]:
        """This call's variables once `begin` resolved them. Raises VariableRefused for a
        refused call, and refuses one whose transport reported nothing in `timeout_s`."""
        try:
            async with asyncio.timeout(timeout_s):
                await self._ready.wait()
        except TimeoutError:
            self.refuse(VariableRefused("variables.timeout", None, "the caller's details "
                                        f"did not arrive in {timeout_s:g} s."))
        if self._refused is not None:
            raise self._refused
        return self.variables

    def fill(self, text: str) -> str:
        """`text` with this call's variables filled in."""
        return render(text, self.variables)

    def fill_all(self, value: Any) -> Any:
        return render_all(value, self.variables)

    def elapsed_s(self) -> float:
        return 0.0 if self.started_at is None else self.clock.now() - self.started_at

    def end(self, reason: str, detail: str = "") -> None:
        """Ask the session to end because of `reason`; the first reason given is kept."""
        if self.end_reason:
            return
        self.end_reason, self.end_detail = reason, detail
        self._bus.publish(CallEnding(session_id=self.session_id, reason=reason, detail=detail))
        self._request_end(reason)
