"""The reload pipeline for one served spec: patch → whole-spec validation → diff → plan → apply
→ confirm, one change at a time.

Every source (the admin API, the watched file) goes through `Reloader`, which answers with an
HTTP-shaped `Result`: 200 with the plan and per-session outcomes, 409 for a stale `If-Match`,
403 when an admin change does what the admin API may not (`flowspec.reload.policy`), 422 with
located errors when the change does not validate or cannot be served. Nothing changes unless the
whole change is accepted.

Validation runs in a worker thread, bounded in time (`limits.COMPILE_TIMEOUT_S`): a large spec
must not stall the live calls this process serves. Replies never hold a value that came from
the environment (`flowspec.redact`).

With a `SpecSource` (the spec file, or a store shared by replicas) the truth lives there: an
accepted admin change is applied, then written to the source before the reply (a source that
will not take it, being read-only, changed meanwhile or unreachable, undoes the change: 409 or
503, nothing changed), and `follow` applies the revisions made elsewhere, numbered as the source
numbers them.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

from flowspec import limits
from flowspec.errors import Diagnostic, SpecInvalid
from flowspec.redact import Redactor
from flowspec.reload.apply import Applier, LiveSession
from flowspec.reload.diff import diff
from flowspec.reload.plan import Plan, build_plan
from flowspec.reload.policy import AdminPolicy
from flowspec.reload.source import Revision, SourceError, SpecSource
from flowspec.reload.store import Candidate, Conflict, PatchKind, SpecStore
from flowspec.runtime.bus import Bus, SpecReloaded
from flowspec.spec.compiled import CompiledGraph

log = logging.getLogger("flowspec.reload")


class Target(Protocol):
    """Where a spec runs: its live sessions, and what new sessions start from."""

    def live_sessions(self) -> Iterable[LiveSession]: ...

    def serve(self, graph: CompiledGraph) -> None: ...


@dataclass(slots=True)
class Result:
    status: int
    body: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.status == 200


class Reloader:
    """Applies changes to one `SpecStore` and the sessions of its `Target`."""

    def __init__(self, store: SpecStore, target: Target, bus: Bus, *,
                 confirm_timeout: float = 5.0, served: bool = True,
                 policy: AdminPolicy | None = None, redactor: Redactor | None = None,
                 compile_timeout: float = limits.COMPILE_TIMEOUT_S,
                 source: SpecSource | None = None) -> None:
        self.store = store
        self.target = target
        self.bus = bus
        self.applier = Applier(bus, confirm_timeout=confirm_timeout)
        self.policy = policy or AdminPolicy()
        """What admin changes may do (files are trusted)."""
        self.redactor = redactor or Redactor()
        """Masks environment values in replies (shared with the log formatter when served)."""
        self.redactor.learn([store.data], store.env)
        self._served = served
        self._compile_timeout = compile_timeout
        self.source = source
        self.revision: Revision | None = None
        """The source's revision the store holds (None without a source)."""
        self.received_at = 0.0
        """`time.perf_counter()` when the change being applied arrived (for the benchmark)."""

    async def patch(self, kind: PatchKind, patch: Any, if_match: str | None = None) -> Result:
        """Apply a JSON Patch (RFC 6902) or merge patch (RFC 7396) to the document as written."""
        return await self._change(lambda: self.store.patched_data(kind, patch), if_match,
                                  "admin", write=True)

    async def replace(self, text: str, origin: str = "file",
                      if_match: str | None = None) -> Result:
        """Make `text` the spec: a whole document through the admin API (`origin` "admin"), or
        a saved file. Either is written to a store when the truth lives in one."""
        write = origin == "admin" or (self.source is not None and self.source.kind != "file")
        return await self._change(lambda: text, if_match, origin, write=write)

    async def open(self) -> None:
        """Take the source's current revision (at start, before any session runs): its number,
        and its text when it differs from what the store was made from."""
        if self.source is None:
            return
        try:
            revision = await self.source.current()
        except SourceError as exc:
            # The store is away: serve what was loaded; `follow` catches up once it is back,
            # and until then admin changes are refused.
            log.warning("spec %s: %s; serving %s until the store is back",
                        self.store.graph.name, exc, self.store.source)
            return
        if revision.text != self.store.text:
            # Changed since it was loaded: the truth wins when it is valid.
            if (await self._take(revision)).ok:
                return
        self.store.renumber(revision.version)
        self.target.serve(self.store.graph)
        self._serving(revision)

    async def follow(self, stop: asyncio.Event) -> None:
        """Apply the source's revisions made elsewhere until `stop` is set. Nothing a revision
        holds stops this: a bad one is reported and the running version stays."""
        if self.source is None:
            return
        async for revision in self.source.changes(stop):
            try:
                result = await self._take(revision)
            except Exception as exc:  # supervision boundary: the server goes on serving
                log.error("spec %s: revision %d could not be applied", self.store.graph.name,
                          revision.version, exc_info=exc)
                continue
            if result.ok and result.body.get("outcome") == "applied":
                log.info("spec %s: now version %s (from the %s)", self.store.graph.name,
                         result.body.get("version"), self.source.kind)

    async def _take(self, revision: Revision) -> Result:
        if self.revision is not None and revision.etag == self.revision.etag:
            return Result(200, self._body(None, [], "no changes"))
        assert self.source is not None
        # With the data at hand, the fast path validates it and no YAML is read.
        result = await self._change(lambda: revision.text if revision.data is None
                                    else revision.data, None, self.source.kind,
                                    version=revision.version, text=revision.text)
        if result.ok:
            self._serving(revision)
        return result

    def _serving(self, revision: Revision) -> None:
        self.revision = revision
        if self.source is not None:
            self.source.served(revision)

    async def replace_data(self, data: Any, origin: str = "admin",
                           if_match: str | None = None) -> Result:
        """Make `data` (a whole document as JSON) the spec."""
        return await self._change(lambda: data, if_match, origin, write=origin == "admin")

    def sessions(self) -> list[dict[str, Any]]:
        """Every live session of this spec with the version it runs."""
        return [{"session_id": s.id, "version": self.applier.version_of(s),
                 "graph_version": s.graph.version} for s in self.target.live_sessions()]

    async def _change(self, change_of: Callable[[], Any], if_match: str | None,
                      origin: str, *, version: int | None = None, write: bool = False,
                      text: str | None = None) -> Result:
        """The pipeline. `write`: the change did not come from the source, and goes to it."""
        write = write and self.source is not None
        self.received_at = time.perf_counter()
        async with self.store.lock:
            store = self.store
            try:
                store.check_if_match(if_match)
            except Conflict as exc:
                return Result(409, {"error": "conflict", "message": str(exc),
                                    "version": store.version, "etag": store.etag})
            try:
                prepared = await self._prepare(change_of, version, admin=origin == "admin",
                                               text=text)
            except SpecInvalid as exc:
                return self._invalid(exc.diagnostics, origin)
            candidate, plan = prepared.candidate, prepared.plan
            if plan is None:
                return Result(200, self._body(None, [], "no changes"))
            if prepared.refused:
                return self._invalid(prepared.refused, origin, plan if prepared.status == 422
                                     else None, status=prepared.status)
            if write:
                refusal = self._source_refusal()
                if refusal is not None:
                    return refusal
            before = store.snapshot()
            store.commit(candidate)
            self.redactor.learn([candidate.data], store.env)
            self.target.serve(candidate.graph)
            reports = await self.applier.apply(plan, self.target.live_sessions())
            if write:
                refusal = await self._write_back(candidate, before)
                if refusal is not None:
                    return refusal
            self.bus.publish(SpecReloaded(session_id="", graph=candidate.graph.name,
                                          version=candidate.graph.version))
            log.info("spec %s: version %d applied from %s (%d change(s), %d live session(s))",
                     candidate.graph.name, candidate.graph.version, origin,
                     len(plan.changes), len(reports))
            body = self._body(plan, [r.to_json() for r in reports], "applied")
            body["warnings"] = self.redactor.data([d.to_json() for d in candidate.warnings])
            return Result(200, body)

    def _source_refusal(self) -> Result | None:
        """Why the source cannot take a change at all (before anything is applied)."""
        assert self.source is not None
        error = self.source.refusal()
        if error is None and self.revision is None:
            error = SourceError("store_unavailable", 503, "the spec's source has not been "
                                "reached since this server started; changes are refused until "
                                "it is")
        return None if error is None else self._source_error(error)

    async def _write_back(self, candidate: Candidate,
                          before: tuple[Any, CompiledGraph, str, Any]) -> Result | None:
        """Write an applied admin change to the source; if it will not take it, undo the
        change (live sessions get the previous settings back) and say why."""
        assert self.source is not None and self.revision is not None
        try:
            revision = await self.source.propose(candidate.text, self.revision, candidate.data)
        except SourceError as error:
            undo = build_plan(candidate.graph, before[1], diff(candidate.data, before[0]),
                              served=self._served)
            self.store.restore(before)
            self.target.serve(before[1])
            await self.applier.apply(undo, self.target.live_sessions())
            return self._source_error(error)
        if revision.version != candidate.graph.version:
            self.store.renumber(revision.version)
        self.target.serve(self.store.graph)
        self._serving(revision)
        return None

    def _source_error(self, error: SourceError) -> Result:
        log.warning("spec %s: admin change refused: %s", self.store.graph.name, error)
        return Result(error.status, {"error": error.code, "message": str(error),
                                     "version": self.store.version, "etag": self.store.etag,
                                     **error.details})

    async def _prepare(self, change_of: Callable[[], Any], version: int | None, *,
                       admin: bool, text: str | None = None) -> _Prepared:
        """Validate the change, check what an admin change may do and plan it, off the event
        loop (a large spec takes seconds) and within the time bound. Raises SpecInvalid for
        every way the change can fail to validate."""
        store = self.store

        def prepare() -> _Prepared:
            change = change_of()
            candidate = store.candidate(change, version) if isinstance(change, str) \
                else store.candidate_data(change, version, text)
            if not candidate.changes:
                return _Prepared(candidate)
            if admin:
                refused = self.policy.refusals(store.data, candidate)
                if refused:
                    return _Prepared(candidate, build_plan(store.graph, candidate.graph, []),
                                     refused, 403)
            plan = build_plan(store.graph, candidate.graph, candidate.changes,
                              served=self._served)
            rejected = [_located(candidate, c.change.pointer, c.reason) for c in plan.rejected]
            return _Prepared(candidate, plan, rejected)

        try:
            async with asyncio.timeout(self._compile_timeout):
                return await asyncio.to_thread(prepare)
        except TimeoutError:
            raise SpecInvalid([Diagnostic(
                code="limit.time", source=store.source, message="validating the change took "
                f"longer than {self._compile_timeout:g} s; nothing changed (make the spec "
                "smaller)")]) from None
        except SpecInvalid:
            raise
        except Exception as exc:  # a document no bound caught: refused, and worth a look
            log.error("spec %s: a change could not be processed", store.graph.name,
                      exc_info=exc)
            raise SpecInvalid([Diagnostic(
                code="spec.unprocessable", source=store.source, message="the change could not "
                f"be processed ({type(exc).__name__}); nothing changed")]) from None

    def _invalid(self, diagnostics: Iterable[Diagnostic], origin: str,
                 plan: Plan | None = None, *, status: int = 422) -> Result:
        diagnostics = list(diagnostics)
        errors = self.redactor.data([d.to_json() for d in diagnostics])
        message = self.redactor.text("; ".join(str(d) for d in diagnostics)[:500])
        log.warning("spec %s: change from %s rejected, nothing changed: %s",
                    self.store.graph.name, origin, message)
        self.bus.publish(SpecReloaded(session_id="", graph=self.store.graph.name,
                                      version=self.store.version, ok=False, message=message,
                                      codes=tuple(dict.fromkeys(d.code for d in diagnostics))))
        body: dict[str, Any] = {"error": "invalid" if status == 422 else "forbidden",
                                "message": "The change was rejected; nothing changed.",
                                "errors": errors, "version": self.store.version,
                                "etag": self.store.etag}
        if plan is not None:
            body["plan"] = self.redactor.data(plan.to_json())
        return Result(status, body)

    def _body(self, plan: Plan | None, sessions: list[dict[str, Any]],
              outcome: str) -> dict[str, Any]:
        return self.redactor.data({
            "outcome": outcome, "version": self.store.version, "etag": self.store.etag,
            "plan": plan.to_json() if plan is not None else None, "sessions": sessions})


@dataclass(slots=True)
class _Prepared:
    """A change validated and planned: `plan` None when it changes nothing; `refused` the
    located reasons it may not be applied, answered with `status`."""

    candidate: Candidate
    plan: Plan | None = None
    refused: list[Diagnostic] = field(default_factory=list)
    status: int = 422


def _located(candidate: Candidate, pointer: str, reason: str) -> Diagnostic:
    return candidate.locate("reload.rejected", f"cannot change while serving: {reason}",
                            pointer)
