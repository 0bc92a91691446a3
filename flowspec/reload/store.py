"""The served spec as a versioned document: its text as written, the compiled graph, a version
and an ETag, and the one place a change is validated before anything else sees it.

The ETag is the document's content hash (the spec as written, `${VAR}` unresolved), so every
worker and replica names the same document the same way; the version is the number the spec's
source gave it (`flowspec.reload.source`). `If-Match` takes either.

The store never holds resolved secrets in what it shows: `text` and `data` keep `${VAR}`
references as written; only the compiled graph (never serialised) holds resolved values.
"""

from __future__ import annotations

import asyncio
import copy
import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from flowspec.errors import Diagnostic, Severity, SpecInvalid
from flowspec.reload import fileedit
from flowspec.reload.diff import MASK, Change, diff, mask_secrets
from flowspec.reload.quick import compile_valid
from flowspec.spec.compile import check_data_limits, compile_document, compile_text
from flowspec.spec.compiled import CompiledGraph
from flowspec.spec.load import Document, parse

PatchKind = Literal["json-patch", "merge-patch"]
_STALE: Any = object()


class Conflict(Exception):
    """The `If-Match` precondition names a version that is no longer current."""

    def __init__(self, given: str, current: str) -> None:
        super().__init__(f"If-Match {given} does not match the current version {current}.")
        self.given = given
        self.current = current


@dataclass(slots=True)
class Candidate:
    """A validated change, not yet committed: the new data and graph, and the diff. `text` is
    made from the data only when asked for (re-dumping YAML is slow; a live patch needs none)."""

    data: Any
    graph: CompiledGraph
    changes: list[Change]
    warnings: list[Diagnostic]
    base_text: str
    source: str
    _text: str | None = None
    _document: Document | None = None

    @property
    def text(self) -> str:
        if self._text is None:
            self._text = fileedit.rewrite(self.base_text, self.data, source=self.source)
        return self._text

    def locate(self, code: str, message: str, pointer: str) -> Diagnostic:
        if self._document is None:  # parsed once, however many findings it locates
            self._document = parse(self.text, self.source)
        return self._document.diagnostic(code, message, pointer, key=True)


class SpecStore:
    """One served spec. Changes are serialised by `lock`; `commit` makes a candidate current."""

    def __init__(self, text: str, source: str, graph: CompiledGraph, *,
                 env: Mapping[str, str] | None = None) -> None:
        self.source = source
        self._text = text
        self.data: Any = parse(text, source).data
        self._text_data = self.data
        self.graph = graph
        self.env: Mapping[str, str] = dict(os.environ if env is None else env)
        self.lock = asyncio.Lock()

    @classmethod
    def from_text(cls, text: str, source: str = "<spec>", *,
                  env: Mapping[str, str] | None = None) -> SpecStore:
        """Raises SpecInvalid with located errors when the text is not a valid spec."""
        graph = compile_text(text, source, env).raise_for_errors()
        return cls(text, source, graph, env=env)

    @property
    def text(self) -> str:
        """The spec as written, comments kept (brought up to date with `data` when read)."""
        if self._text_data is not self.data:
            self._text = fileedit.rewrite(self._text, self.data, source=self.source)
            self._text_data = self.data
        return self._text

    @property
    def version(self) -> int:
        return self.graph.version

    @property
    def etag(self) -> str:
        return f'"{self.graph.content_hash}"'

    def check_if_match(self, if_match: str | None) -> None:
        """Raise Conflict unless `if_match` (absent, `*`, the ETag, or the version as `"N"`,
        `N` or `W/"N"`) names the current document."""
        if if_match is None or if_match.strip() == "*":
            return
        current = {str(self.version), self.graph.content_hash}
        for tag in if_match.split(","):
            if tag.strip().removeprefix("W/").strip('"') in current:
                return
        raise Conflict(if_match.strip(), self.etag)

    def patched_data(self, kind: PatchKind, patch: Any) -> Any:
        """The document as written with a JSON Patch or a merge patch applied. Raises
        PatchFailed (a SpecInvalid) when the patch cannot apply."""
        if kind == "json-patch":
            return fileedit.apply_json_patch(self.data, patch)
        return fileedit.apply_merge_patch(self.data, patch)

    def candidate_data(self, data: Any, version: int | None = None,
                       text: str | None = None) -> Candidate:
        """Validate the whole document `data`; as `candidate`, without text on the fast path
        (`text`: the data as written, when known). Data beyond a bound (`flowspec.limits`) is
        refused before anything else reads it."""
        beyond = [d for d in check_data_limits(data, self.source)
                  if d.severity is Severity.ERROR]
        if beyond:
            raise SpecInvalid(beyond)
        graph = compile_valid(data, self.source, self.env, version or self.version + 1)
        if graph is None:
            return self.candidate(fileedit.rewrite(self.text, data, source=self.source),
                                  version)
        warnings = [d for d in graph.diagnostics if d.severity is Severity.WARNING]
        # The last text written is a fine base even when stale: `rewrite` brings any text to
        # the new data.
        return Candidate(data, graph, diff(self.data, data), warnings, self._text, self.source,
                         text)

    def candidate(self, text: str, version: int | None = None) -> Candidate:
        """Validate `text` whole, as `flowspec validate` would, as `version` (default: the
        next). Raises SpecInvalid (every located error) and leaves the store unchanged."""
        document = parse(text, self.source)
        data = copy.deepcopy(document.data)  # compiling resolves references in place
        report = compile_document(document, self.env, version=version or self.version + 1)
        graph = report.raise_for_errors()
        return Candidate(data, graph, diff(self.data, data), report.warnings, text,
                         self.source, text)

    def commit(self, candidate: Candidate) -> None:
        if candidate.graph.version <= self.version:
            raise SpecInvalid([Diagnostic(code="reload.stale", source=self.source,
                                          message="The spec changed while this change was "
                                          "being planned; apply it again.")])
        self.data, self.graph = candidate.data, candidate.graph
        self._text = candidate._text if candidate._text is not None else candidate.base_text
        self._text_data = self.data if candidate._text is not None else _STALE

    def renumber(self, version: int) -> None:
        """Take the number the source gives the running document (at start, before any
        session runs it)."""
        if version != self.version:
            self.graph = dataclasses.replace(self.graph, version=version, _out={}, _in={})

    def snapshot(self) -> tuple[Any, CompiledGraph, str, Any]:
        return self.data, self.graph, self._text, self._text_data

    def restore(self, snapshot: tuple[Any, CompiledGraph, str, Any]) -> None:
        """Undo a commit (a change the source would not take after all)."""
        self.data, self.graph, self._text, self._text_data = snapshot

    def document(self) -> dict[str, Any]:
        """What `GET /admin/spec` shows: the document as written (references unresolved)."""
        data, literals = mask_secrets(self.data)
        text = self.text
        for secret in literals:
            text = text.replace(secret, MASK)
        return {"name": self.graph.name, "version": self.version, "etag": self.etag,
                "source": self.source, "content_hash": self.graph.content_hash,
                "spec": data, "text": text}
