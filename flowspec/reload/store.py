"""The served spec as a versioned document: its text as written, the compiled graph, a version
and an ETag, and the one place a change is validated before anything else sees it.

The store never holds resolved secrets in what it shows: `text` and `data` keep `${VAR}`
references as written; only the compiled graph (never serialised) holds resolved values.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from flowspec.errors import Diagnostic, SpecInvalid
from flowspec.reload import fileedit
from flowspec.reload.diff import MASK, Change, diff, mask_secrets
from flowspec.spec.compile import compile_text
from flowspec.spec.compiled import CompiledGraph
from flowspec.spec.load import Document, parse

PatchKind = Literal["json-patch", "merge-patch"]


class Conflict(Exception):
    """The `If-Match` precondition names a version that is no longer current."""

    def __init__(self, given: str, current: str) -> None:
        super().__init__(f"If-Match {given} does not match the current version {current}.")
        self.given = given
        self.current = current


@dataclass(frozen=True, slots=True)
class Candidate:
    """A validated change, not yet committed: the new text, data and graph, and the diff."""

    text: str
    data: Any
    graph: CompiledGraph
    changes: list[Change]
    warnings: list[Diagnostic]
    document: Document


class SpecStore:
    """One served spec. Changes are serialised by `lock`; `commit` makes a candidate current."""

    def __init__(self, text: str, source: str, graph: CompiledGraph, *,
                 env: Mapping[str, str] | None = None) -> None:
        self.source = source
        self.text = text
        self.data: Any = parse(text, source).data
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
    def version(self) -> int:
        return self.graph.version

    @property
    def etag(self) -> str:
        return f'"{self.version}"'

    def check_if_match(self, if_match: str | None) -> None:
        """Raise Conflict unless `if_match` (absent, `*`, `"N"`, `N` or `W/"N"`) is current."""
        if if_match is None or if_match.strip() == "*":
            return
        for tag in if_match.split(","):
            if tag.strip().removeprefix("W/").strip('"') == str(self.version):
                return
        raise Conflict(if_match.strip(), self.etag)

    def patched_text(self, kind: PatchKind, patch: Any) -> str:
        """The text after applying a JSON Patch or a merge patch to the document as written.
        Raises PatchFailed (a SpecInvalid) when the patch cannot apply."""
        if kind == "json-patch":
            data = fileedit.apply_json_patch(self.data, patch)
        else:
            data = fileedit.apply_merge_patch(self.data, patch)
        return fileedit.rewrite(self.text, data, source=self.source)

    def candidate(self, text: str) -> Candidate:
        """Validate `text` whole, as `flowspec validate` would. Raises SpecInvalid (every
        located error) and leaves the store unchanged."""
        report = compile_text(text, self.source, self.env, version=self.version + 1)
        graph = report.raise_for_errors()
        document = parse(text, self.source)  # the compiled one holds resolved references
        return Candidate(text, document.data, graph, diff(self.data, document.data),
                         report.warnings, document)

    def commit(self, candidate: Candidate) -> None:
        if candidate.graph.version != self.version + 1:
            raise SpecInvalid([Diagnostic(code="reload.stale", source=self.source,
                                          message="The spec changed while this change was "
                                          "being planned; apply it again.")])
        self.text, self.data, self.graph = candidate.text, candidate.data, candidate.graph

    def document(self) -> dict[str, Any]:
        """What `GET /admin/spec` shows: the document as written (references unresolved)."""
        data, literals = mask_secrets(self.data)
        text = self.text
        for secret in literals:
            text = text.replace(secret, MASK)
        return {"name": self.graph.name, "version": self.version, "etag": self.etag,
                "source": self.source, "content_hash": self.graph.content_hash,
                "spec": data, "text": text}
