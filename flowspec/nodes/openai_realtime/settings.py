"""A Realtime node's live settings: the session payload it sends, and settings deltas turned
into the smallest `session.update` that applies them, under the provider's rules (the model is
fixed for a connection; the voice is fixed once audio was produced; reasoning only for models
that can use it).

`reasoning` set for a model that cannot use it is left out of every `session.update`, and the node
says so once, as a log warning on `flowspec.nodes.openai_realtime`, not on the bus: validation
already reports it (`provider.reasoning-unsupported`), and nothing failed at the provider."""

from __future__ import annotations

import itertools
import logging
from collections import OrderedDict, deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from flowspec.conversation.template import fill_request, templated
from flowspec.nodes.openai_realtime import protocol, protocol_beta
from flowspec.nodes.openai_realtime.delta import echo_differences, merge_delta, minimal_session
from flowspec.nodes.tool_defs import tool_definitions
from flowspec.runtime.bus import (
    BusEvent,
    SettingsApplied,
    SettingsConfirmed,
    SettingsDeferred,
    SettingsRejected,
)
from flowspec.spec.models.realtime import RealtimeNodeSpec, RealtimeSettingsSpec
from flowspec.spec.models.realtime_beta import RealtimeBetaNodeSpec, RealtimeBetaSettingsSpec
from flowspec.spec.models.tools import ToolNodeSpec

log = logging.getLogger("flowspec.nodes.openai_realtime")

REASONING_MODELS = ("gpt-realtime-2",)


@dataclass(slots=True)
class SettingsUpdate:
    """What applying a delta asks of the node: a partial session to send (empty: nothing) with
    its `event_id`, and bus events to publish."""

    session: dict[str, Any] = field(default_factory=dict)
    events: list[BusEvent] = field(default_factory=list)
    event_id: str = ""
    undone: object | None = None
    """The flow move the provider refused, when this update takes it back."""


Settings = RealtimeSettingsSpec | RealtimeBetaSettingsSpec
Overlay = tuple[str | None, list[dict[str, Any]] | None]
"""A flow state's instructions (joined to the node's) and tools (instead of the node's)."""
NO_OVERLAY: Overlay = (None, None)


@dataclass(slots=True)
class _Pending:
    """A sent update waiting for the server's answer, and what to go back to if refused."""

    event_id: str
    version: int
    session_id: str
    intended: dict[str, Any]
    previous: tuple[Settings, list[dict[str, Any]], Overlay, Mapping[str, Any]]
    rollback: bool = False
    move: object | None = None


class Shared:
    """Results the live sessions of one spec version share, computed once per reload instead
    of once per session: those sessions hold the very same settings and tools objects and
    receive the very same delta object, so the merged settings, the session payload and the
    minimal update are equal for all of them. Keyed by the identity of the inputs, which each
    entry holds on to, so an id is never reused while its entry lives; a few recent entries
    are kept."""

    def __init__(self, size: int = 64) -> None:
        self._size = size
        self._items: OrderedDict[tuple[int, ...], tuple[tuple[object, ...], Any]] = \
            OrderedDict()

    def get(self, *inputs: object) -> Any:
        entry = self._items.get(tuple([id(x) for x in inputs]))
        if entry is None:
            return None
        refs, value = entry
        for held, given in zip(refs, inputs, strict=True):
            if held is not given:
                return None
        return value

    def put(self, value: Any, *inputs: object) -> Any:
        self._items[tuple(map(id, inputs))] = (inputs, value)
        while len(self._items) > self._size:
            self._items.popitem(last=False)
        return value


SHARED = Shared()


class LiveSettings:
    """The settings one session runs with. Updates are deltas merged into them (a setting the
    delta does not name keeps its value), sent as a minimal partial session, confirmed against
    the server's echo, and rolled back to the last good settings when the server refuses."""

    def __init__(self, spec: RealtimeNodeSpec | RealtimeBetaNodeSpec,
                 tool_specs: Mapping[str, ToolNodeSpec], *, node_id: str,
                 builtin: Mapping[str, ToolNodeSpec] | None = None) -> None:
        self._spec = spec
        self._node_id = node_id
        self.current: Settings = spec.effective_settings()
        self._builtin = _definitions(builtin or {})
        """The conversation's own tools (`end_call`): kept through every tools update."""
        self._tools = _joined(_definitions(tool_specs), self._builtin)
        self._values: Mapping[str, Any] = {}
        self._overlay: Overlay = NO_OVERLAY
        self._payload: dict[str, Any] | None = None
        self._ids = itertools.count(1)
        self._warned: set[str] = set()
        self._beta = isinstance(self.current, RealtimeBetaSettingsSpec)
        self._pending: deque[_Pending] = deque()
        self.audio_produced = False
        """The server sent assistant audio on this connection: its voice is fixed."""

    @property
    def model(self) -> str:
        return self.current.model

    @property
    def values(self) -> Mapping[str, Any]:
        """The call's variables, filled into the instructions and tool descriptions sent."""
        return self._values

    @values.setter
    def values(self, values: Mapping[str, Any]) -> None:
        self._values = values
        self._payload = None

    def session_payload(self) -> dict[str, Any]:
        """The full `session` of a `session.update` for the current settings (shared: not to
        be changed by its reader)."""
        if self._payload is None:
            instructions, tools = self._overlay
            payload: dict[str, Any] = SHARED.get(self.current, self._tools, instructions,
                                                 tools) or SHARED.put(
                self._build(), self.current, self._tools, instructions, tools)
            # Only a payload with placeholders is this call's own; the rest stay shared.
            self._payload = fill_request(payload, self._values) \
                if self._values and templated(payload) else payload
        return self._payload

    def _next_id(self) -> str:
        # Unique on the connection, and unlike the link's own `fs_<n>` ids: the server's
        # answer to an update is matched by it.
        return f"fs_settings_{next(self._ids)}"

    def _set(self, current: Settings, tools: list[dict[str, Any]],
             overlay: Overlay | None = None, values: Mapping[str, Any] | None = None) -> None:
        self.current, self._tools, self._payload = current, tools, None
        if overlay is not None:
            self._overlay = overlay
        if values is not None:
            self._values = values

    def _state(self) -> tuple[Settings, list[dict[str, Any]], Overlay, Mapping[str, Any]]:
        return self.current, self._tools, self._overlay, self._values

    def enter(self, instructions: str, tools: list[dict[str, Any]],
              values: Mapping[str, Any]) -> None:
        """Start in a flow state (before the first `session.update`)."""
        self._set(self.current, self._tools, (instructions, tools), values)

    def move(self, instructions: str, tools: list[dict[str, Any]], values: Mapping[str, Any],
             session_id: str, token: object) -> SettingsUpdate:
        """A flow move: the smallest update that gives the model the new state's instructions
        and tools. Confirmed by the echo like any update; refused, it comes back with
        `undone` set to `token`."""
        before = self.session_payload()
        previous = self._state()
        self._set(self.current, self._tools, (instructions, tools), values)
        after = self.session_payload()
        changed = minimal_session(before, after, beta=self._beta)
        if not changed:
            return SettingsUpdate()
        event_id = self._next_id()
        self._pending.append(_Pending(event_id, 0, session_id, changed, previous, move=token))
        return SettingsUpdate(session=changed, event_id=event_id)

    def _build(self) -> dict[str, Any]:
        settings = self.current
        extra = self._spec.extra
        if settings.system_instruction is not None and \
                settings.session_properties.instructions is not None:
            self._warn("instructions", "both settings.system_instruction and "
                       "session_properties.instructions are set; system_instruction wins")
        if isinstance(settings, RealtimeBetaSettingsSpec):
            payload = protocol_beta.session_payload(settings, tools=self._tools, extra=extra)
        else:
            if settings.session_properties.reasoning is not None and \
                    not settings.model.startswith(REASONING_MODELS):
                self._warn("reasoning", f"model {settings.model!r} cannot use `reasoning`; it "
                           "is not sent (reasoning realtime models: gpt-realtime-2 and later)")
            payload = protocol.session_payload(settings, tools=self._tools, extra=extra)
        instructions, tools = self._overlay
        if instructions is not None:
            base = payload.get("instructions")
            payload["instructions"] = f"{base}\n\n{instructions}" if base else instructions
        if tools is not None:
            payload["tools"] = list(tools)
        return payload

    def connected(self) -> None:
        """A new connection: nothing is in flight on it and it has produced no audio."""
        self._pending.clear()
        self.audio_produced = False

    def update(self, delta: Mapping[str, Any], version: int, session_id: str, *,
               audio_sent: bool) -> SettingsUpdate:
        """Apply a settings delta (`model`, `system_instruction`, `session_properties`, as in
        the spec, merged in; `None` removes a setting; `tools`: the new function definitions).
        A delta the provider would refuse is rejected whole, and nothing changes; a voice change
        after audio is deferred (this session keeps its voice) and the rest applies."""
        def rejected(message: str) -> SettingsUpdate:
            log.warning("%s: settings version %d rejected: %s", self._node_id, version, message)
            return SettingsUpdate(events=[SettingsRejected(
                session_id=session_id, node_id=self._node_id, version=version, message=message)])

        source = delta
        delta = dict(delta)
        tools = delta.pop("tools", None)
        model = delta.get("model")
        if model is not None and model != self.current.model:
            return rejected("The model cannot change within a session (it is part of the "
                            "connection); new sessions will use it.")
        merged = SHARED.get(self.current, source)
        if merged is None:
            data = merge_delta(self.current.model_dump(exclude_unset=True, mode="json"), delta)
            try:
                merged = SHARED.put((data, type(self.current).model_validate(data)),
                                    self.current, source)
            except ValidationError as exc:
                return rejected(f"The settings are not valid: {exc.errors()[0]['msg']}.")
        data, new = merged
        before = self.session_payload()
        previous = self._state()
        self._set(new, self._tools if tools is None else
                  SHARED.get(tools, self._builtin) or SHARED.put(
                      _joined([dict(tool) for tool in tools], self._builtin), tools,
                      self._builtin))
        events: list[BusEvent] = []
        if (audio_sent or self.audio_produced) and _voice(before) != _voice(self.session_payload()):
            self._set(self._with_voice(data, previous[0]), self._tools)
            message = ("The voice cannot change once the model has produced audio in this "
                       "session; new sessions will use it.")
            events.append(SettingsDeferred(session_id=session_id, node_id=self._node_id,
                                           version=version, fields=("voice",), message=message))
        after = self.session_payload()
        changed = SHARED.get(before, after) or SHARED.put(
            minimal_session(before, after, beta=self._beta), before, after)
        events.insert(0, SettingsApplied(session_id=session_id, node_id=self._node_id,
                                         changed=tuple(changed), version=version))
        if not changed:
            return SettingsUpdate(events=events)
        event_id = self._next_id()
        self._pending.append(_Pending(event_id, version, session_id, changed, previous))
        return SettingsUpdate(session=changed, events=events, event_id=event_id)

    def confirm(self, echo: Mapping[str, Any]) -> SettingsUpdate:
        """The server answered the oldest update in flight with `session.updated` (the event
        carries no `event_id`: order is the only correlation). A matching echo is an ACK; one
        that differs rolls back like a refusal."""
        if not self._pending:
            return SettingsUpdate()
        pending = self._pending.popleft()
        if pending.rollback:
            return SettingsUpdate()
        wrong = echo_differences(pending.intended, echo)
        if wrong:
            return self._roll_back(pending, "The server's session.updated does not hold what "
                                   f"was sent at {', '.join(wrong)}")
        return SettingsUpdate(events=[SettingsConfirmed(
            session_id=pending.session_id, node_id=self._node_id, version=pending.version)])

    def refused(self, event_id: str, code: str | None, message: str) -> SettingsUpdate | None:
        """The server answered an update with an `error` (None: `event_id` is no update of
        ours). The session goes back to the settings before it, with a second minimal update."""
        for pending in self._pending:
            if pending.event_id == event_id:
                self._pending.remove(pending)
                if pending.rollback:
                    return SettingsUpdate()
                return self._roll_back(pending, f"The provider refused it ({code}: {message})")
        return None

    def forget(self, event_id: str) -> None:
        """An update that was never sent: no answer will come for it."""
        self._pending = deque(p for p in self._pending if p.event_id != event_id)

    def _roll_back(self, pending: _Pending, reason: str) -> SettingsUpdate:
        before = self.session_payload()
        self._set(*pending.previous)
        # Later updates were built on the refused one: going back undoes them too.
        self._pending.clear()
        if pending.move is not None:
            log.warning("%s: a flow move was refused: %s", self._node_id, reason)
            back = minimal_session(before, self.session_payload(), beta=self._beta)
            undo = SettingsUpdate(undone=pending.move)
            if back:
                undo.session, undo.event_id = back, self._next_id()
                self._pending.append(_Pending(undo.event_id, 0, pending.session_id, back,
                                              pending.previous, rollback=True))
            return undo
        message = f"{reason}; the session went back to its last good settings."
        log.warning("%s: settings version %d rejected: %s", self._node_id, pending.version,
                    message)
        events: list[BusEvent] = [SettingsRejected(
            session_id=pending.session_id, node_id=self._node_id, version=pending.version,
            message=message)]
        back = minimal_session(before, self.session_payload(), beta=self._beta)
        if not back:
            return SettingsUpdate(events=events)
        event_id = self._next_id()
        self._pending.append(_Pending(event_id, pending.version, pending.session_id, back,
                                      pending.previous, rollback=True))
        return SettingsUpdate(session=back, events=events, event_id=event_id)

    def _with_voice(self, data: dict[str, Any], previous: Settings) -> Settings:
        """`data` (validated settings) with the voice `previous` had."""
        voice: Any
        keys: tuple[str, ...]
        if isinstance(previous, RealtimeBetaSettingsSpec):
            voice = previous.session_properties.voice
            keys = ("session_properties", "voice")
        else:
            audio = previous.session_properties.audio
            out = audio.output if audio is not None else None
            voice = out.voice if out is not None else None
            keys = ("session_properties", "audio", "output", "voice")
        patch: dict[str, Any] = {keys[-1]: voice}
        for key in reversed(keys[:-1]):
            patch = {key: patch}
        return type(previous).model_validate(merge_delta(data, patch))

    def _warn(self, key: str, message: str) -> None:
        if key not in self._warned:
            self._warned.add(key)
            log.warning("%s: %s.", self._node_id, message)


def _definitions(specs: Mapping[str, ToolNodeSpec]) -> list[dict[str, Any]]:
    """The Realtime definitions of `specs`: one list for every session whose specs are the same
    objects (sessions of one graph), so their payloads can be shared."""
    if not specs:
        return []
    inputs = [part for item in specs.items() for part in item]
    found: list[dict[str, Any]] = SHARED.get(*inputs) or SHARED.put(
        tool_definitions(list(specs), specs, "realtime"), *inputs)
    return found


def _joined(tools: list[dict[str, Any]], builtin: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [*tools, *builtin] if builtin else tools


def _voice(session: dict[str, Any]) -> Any:
    audio = session.get("audio")
    if isinstance(audio, dict):
        return (audio.get("output") or {}).get("voice")
    return session.get("voice")
