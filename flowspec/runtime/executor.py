"""The executor: builds sessions of compiled graphs, with one registry and one bus.

    executor = Executor()                        # DEFAULT_REGISTRY, a fresh Bus
    async with executor.session(graph) as session:
        await session.wait()

How frames move inside a session is `flowspec.runtime.dispatch`; lifecycle and supervision are
`flowspec.runtime.session`.
"""

from __future__ import annotations

import weakref
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from flowspec.runtime.bus import Bus, BusEvent, SessionEnded, SessionStarted
from flowspec.runtime.registry import DEFAULT_REGISTRY, Registry
from flowspec.runtime.session import Session
from flowspec.spec.compiled import CompiledGraph

if TYPE_CHECKING:
    from flowspec.conversation.clock import Clock


class Executor:
    def __init__(
        self,
        *,
        registry: Registry = DEFAULT_REGISTRY,
        bus: Bus | None = None,
        stop_timeout: float = 5.0,
        drain_timeout: float = 30.0,
    ) -> None:
        self.registry = registry
        self.bus = bus or Bus()
        self._stop_timeout = stop_timeout
        self._drain_timeout = drain_timeout
        self._sessions: dict[str, Session] = {}
        # Built but not started yet; weak, so a session never entered is simply forgotten.
        self._pending: weakref.WeakValueDictionary[str, Session] = weakref.WeakValueDictionary()
        self.bus.subscribe(self._track, SessionStarted, SessionEnded)

    @property
    def sessions(self) -> Mapping[str, Session]:
        """The sessions running now, by id."""
        return self._sessions

    def session(self, graph: CompiledGraph, *, session_id: str | None = None,
                clock: Clock | None = None,
                variables: Mapping[str, Any] | None = None) -> Session:
        """A new, not yet started session of `graph`: use it as an async context manager.
        `variables` are the call's values (checked against the spec's `variables:` when the
        call begins); `clock` times its conversation (a `ManualClock` in tests)."""
        session = Session(graph, registry=self.registry, bus=self.bus, session_id=session_id,
                          stop_timeout=self._stop_timeout, drain_timeout=self._drain_timeout,
                          clock=clock, variables=variables)
        self._pending[session.id] = session
        return session

    def _track(self, event: BusEvent) -> None:
        if isinstance(event, SessionStarted):
            session = self._pending.pop(event.session_id, None)
            if session is not None:
                self._sessions[event.session_id] = session
        else:  # SessionEnded
            self._pending.pop(event.session_id, None)
            self._sessions.pop(event.session_id, None)
