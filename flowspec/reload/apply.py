"""Applying a plan to live sessions: each model node of each session gets its settings delta,
and the outcome is read back from the bus (sent, confirmed by the provider's echo, deferred,
rolled back), giving per session what was applied, deferred and rejected, and why.

Sessions are updated concurrently; each waits at most `confirm_timeout` seconds for its
provider's answer, after which the change is reported as sent but unconfirmed.

The `UpdateSettingsFrame` is handed to the node's `handle` directly rather than sent along an
edge: on an edge it would queue behind the caller's audio, and a live change is due at the
provider within milliseconds. Model nodes take it without awaiting anything another `handle`
call holds (they merge the delta, then send one event).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from flowspec.errors import UsageError
from flowspec.frames import UpdateSettingsFrame
from flowspec.reload.flow_live import reflow
from flowspec.reload.plan import NodeAction, Plan, PlannedChange
from flowspec.runtime.bus import (
    Bus,
    BusEvent,
    SettingsApplied,
    SettingsConfirmed,
    SettingsDeferred,
    SettingsRejected,
)
from flowspec.spec.compiled import CompiledGraph
from flowspec.spec.models.base import NodeSpec
from flowspec.spec.models.conversation import ConversationSpec

log = logging.getLogger("flowspec.reload")

NEW_SESSIONS = "applies to new sessions; this session keeps the graph it started with"


class LiveSession(Protocol):
    """What applying needs of a running session (`flowspec.runtime.Session` is one)."""

    id: str
    graph: CompiledGraph

    def node(self, node_id: str) -> Any: ...


@dataclass(slots=True)
class SessionReport:
    session_id: str
    graph_version: int
    version: int
    applied: list[str] = field(default_factory=list)
    deferred: list[dict[str, str]] = field(default_factory=list)
    rejected: list[dict[str, str]] = field(default_factory=list)

    @property
    def status(self) -> str:
        if self.rejected:
            return "rejected" if not self.applied else "partial"
        if self.deferred:
            return "partial" if self.applied else "deferred"
        return "applied" if self.applied else "unchanged"

    def to_json(self) -> dict[str, Any]:
        return {"session_id": self.session_id, "status": self.status,
                "version": self.version, "graph_version": self.graph_version,
                "applied": list(dict.fromkeys(self.applied)), "deferred": self.deferred,
                "rejected": self.rejected}


@dataclass(slots=True)
class _Outcome:
    confirmed_by_provider: bool
    """Realtime: done at the echo (or refusal); Responses: done once the node took it."""
    events: list[BusEvent] = field(default_factory=list)
    done: asyncio.Event = field(default_factory=asyncio.Event)

    def finished(self, event: BusEvent) -> bool:
        match event:
            case SettingsConfirmed() | SettingsRejected():
                return True
            case SettingsApplied(changed=changed):
                return not changed or not self.confirmed_by_provider
        return False


class Applier:
    """Delivers plans to sessions. `versions` holds, per session id, the spec version it runs
    (every change of that version applied to it)."""

    def __init__(self, bus: Bus, *, confirm_timeout: float = 5.0) -> None:
        self.bus = bus
        self.confirm_timeout = confirm_timeout
        self.versions: dict[str, int] = {}
        self.written_at = 0.0
        """`time.perf_counter()` once the last plan's updates were all written to their
        sockets (what the benchmark times flowspec's own part of a reload by)."""

    def version_of(self, session: LiveSession) -> int:
        return self.versions.get(session.id, session.graph.version)

    async def apply(self, plan: Plan, sessions: Iterable[LiveSession]) -> list[SessionReport]:
        """Hand the plan to every session, then wait (at most `confirm_timeout`) for all their
        providers' answers at once. Delivering is one pass over the sessions, with no task per
        session: each node turns the delta into its update and writes it without waiting for
        anything, so the last session's update leaves soon after the first one's."""
        live = list(sessions)
        outcomes: dict[tuple[str, str], _Outcome] = {}
        waiting = _Countdown()
        by_node = plan.changes_by_node

        def collect(event: BusEvent) -> None:
            node_id = getattr(event, "node_id", "")
            outcome = outcomes.get((event.session_id, node_id))
            if outcome is None or getattr(event, "version", None) != plan.to_version:
                return
            outcome.events.append(event)
            if not outcome.done.is_set() and outcome.finished(event):
                outcome.done.set()
                waiting.done()

        kinds = (SettingsApplied, SettingsConfirmed, SettingsDeferred, SettingsRejected)
        with self.bus.subscribe(collect, *kinds):
            delivered = [await self._deliver(plan, s, by_node, outcomes, waiting)
                         for s in live]
            self.written_at = time.perf_counter()
            try:
                async with asyncio.timeout(self.confirm_timeout):
                    await waiting.wait()
            except TimeoutError:
                pass
        handled = {id(c) for changes in by_node.values() for c in changes}
        reports = [self._report(plan, session, report, sent, outcomes, handled)
                   for session, (report, sent) in zip(live, delivered, strict=True)]
        for report in reports:
            self.versions[report.session_id] = report.version
        return reports

    def forget(self, session_id: str) -> None:
        self.versions.pop(session_id, None)

    async def _deliver(self, plan: Plan, session: LiveSession,
                       by_node: dict[str, list[PlannedChange]],
                       outcomes: dict[tuple[str, str], _Outcome], waiting: _Countdown
                       ) -> tuple[SessionReport, list[tuple[NodeAction, list[PlannedChange]]]]:
        """Give each of the plan's actions to its node in `session`; what was sent, to read
        the outcome of later."""
        previous = self.version_of(session)
        report = SessionReport(session.id, session.graph.version, previous)
        sent: list[tuple[NodeAction, list[PlannedChange]]] = []
        for action in plan.actions:
            changes = by_node.get(action.node_id, [])
            reason = _mismatch(session.graph, action)
            if reason:
                report.deferred.extend(_entries(changes, reason))
                continue
            outcome = outcomes[(session.id, action.node_id)] = _Outcome(
                confirmed_by_provider=action.sends_update)
            waiting.add()
            try:
                node = session.node(action.node_id)
                await node.handle(UpdateSettingsFrame(delta=action.delta,
                                                      version=plan.to_version), "in")
            except UsageError as exc:
                report.rejected.extend(_entries(changes, str(exc)))
                self._settled(outcome, waiting)
                continue
            except Exception as exc:  # a failing node must not fail the reload of the others
                log.warning("session %s: node %r failed to take settings version %d: %r",
                            session.id, action.node_id, plan.to_version, exc, exc_info=exc)
                report.rejected.extend(_entries(changes, f"the node failed: {exc}"))
                self._settled(outcome, waiting)
                continue
            sent.append((action, changes))
        if plan.conversation is not None:
            _converse(session, plan.conversation)
        if plan.flow is not None:
            try:
                await reflow(session, plan.flow, plan.flow_states)
            except Exception as exc:  # one call's failure must not fail the reload of others
                log.warning("session %s: the flow change failed: %r", session.id, exc,
                            exc_info=exc)
        return report, sent

    @staticmethod
    def _settled(outcome: _Outcome, waiting: _Countdown) -> None:
        if not outcome.done.is_set():
            outcome.done.set()
            waiting.done()

    def _report(self, plan: Plan, session: LiveSession, report: SessionReport,
                sent: list[tuple[NodeAction, list[PlannedChange]]],
                outcomes: dict[tuple[str, str], _Outcome], handled: set[int]) -> SessionReport:
        for action, changes in sent:
            _read(outcomes[(session.id, action.node_id)], changes, report, self.confirm_timeout)
        for planned in plan.changes:
            if id(planned) in handled:
                continue
            if planned.applies == "live":
                report.applied.append(planned.change.pointer)
            elif planned.applies != "rejected":
                report.deferred.append({"pointer": planned.change.pointer,
                                        "reason": planned.reason or NEW_SESSIONS})
        if not report.deferred and not report.rejected:
            report.version = plan.to_version
        return report


class _Countdown:
    """Waits for a number of things to be done, with one event rather than a task each."""

    def __init__(self) -> None:
        self._left = 0
        self._event = asyncio.Event()
        self._event.set()

    def add(self) -> None:
        self._left += 1
        self._event.clear()

    def done(self) -> None:
        self._left -= 1
        if self._left <= 0:
            self._event.set()

    async def wait(self) -> None:
        await self._event.wait()


def _converse(session: LiveSession, new: ConversationSpec) -> None:
    """A live call's conversation takes the new `idle` and `closing`: its driver reads them at
    its next silence (a silence already counting keeps its length)."""
    call = getattr(session, "call", None)
    if call is not None and call.conversation is not None:
        call.conversation = call.conversation.model_copy(
            update={"idle": new.idle, "closing": new.closing})


def _mismatch(graph: CompiledGraph, action: NodeAction) -> str:
    spec: NodeSpec | None = graph.nodes.get(action.node_id)
    if spec is None or spec.type != action.type:
        return (f"this session runs graph version {graph.version}, where {action.node_id!r} "
                f"is not a {action.type} node")
    return ""


def _entries(changes: Sequence[PlannedChange], reason: str) -> list[dict[str, str]]:
    return [{"pointer": c.change.pointer, "reason": reason} for c in changes]


def _read(outcome: _Outcome, changes: list[PlannedChange], report: SessionReport,
          timeout: float) -> None:
    rejected = [e for e in outcome.events if isinstance(e, SettingsRejected)]
    if rejected:
        report.rejected.extend(_entries(changes, rejected[0].message))
        return
    deferred = [e for e in outcome.events if isinstance(e, SettingsDeferred)]
    voice = [c for c in changes if c.applies == "until_first_audio"]
    if deferred:
        report.deferred.extend(_entries(voice, deferred[0].message))
    rest = [c for c in changes if not (deferred and c in voice)]
    if not any(isinstance(e, SettingsApplied) for e in outcome.events):
        report.rejected.extend(_entries(rest, "the node did not take the update (no answer "
                                        f"within {timeout} s)"))
        return
    if outcome.done.is_set():
        report.applied.extend(c.change.pointer for c in rest)
    else:
        report.deferred.extend(_entries(rest, "sent; the provider did not confirm it within "
                                        f"{timeout} s"))
