"""The compile pipeline: load → interpolate → schema-validate → model → check → CompiledGraph.

Each stage reports every problem it finds; a stage runs only when the one before it left no error
that would make its own findings noise (a schema error makes the models meaningless).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flowspec.errors import Diagnostic, Severity, SpecInvalid
from flowspec.spec.bounds import check_data_limits
from flowspec.spec.compiled import CompiledGraph
from flowspec.spec.load import Document, interpolate, join_pointer, parse, read_text

__all__ = ["Report", "check_data_limits", "compile_document", "compile_file", "compile_text",
           "content_hash", "load_graph"]


@dataclass(slots=True)
class Report:
    """The outcome of compiling one spec: the graph (when valid) and every finding."""

    source: str
    diagnostics: list[Diagnostic] = field(default_factory=list)
    graph: CompiledGraph | None = None
    document: Document | None = None

    @property
    def errors(self) -> list[Diagnostic]:
        return [d for d in self.diagnostics if d.severity is Severity.ERROR]

    @property
    def warnings(self) -> list[Diagnostic]:
        return [d for d in self.diagnostics if d.severity is Severity.WARNING]

    @property
    def ok(self) -> bool:
        return not self.errors

    def raise_for_errors(self) -> CompiledGraph:
        if self.graph is None or self.errors:
            raise SpecInvalid(self.diagnostics)
        return self.graph


def _pydantic_diagnostics(doc: Document, exc: Any) -> list[Diagnostic]:
    found = []
    for error in exc.errors(include_url=False):
        node: Any = doc.data
        pointer = ""
        for token in error["loc"]:
            if isinstance(node, dict) and token in node:
                node = node[token]
            elif isinstance(node, list) and isinstance(token, int) and token < len(node):
                node = node[token]
            else:
                continue  # discriminator tags and model names are not in the document
            pointer = join_pointer(pointer, token)
        message = str(error["msg"]).removeprefix("Value error, ")
        code = "spec.conflict" if error["type"] == "value_error" else "schema.invalid"
        found.append(doc.diagnostic(code, message, pointer, key=True))
    return found


def content_hash(data: Any) -> str:
    canonical = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def compile_document(doc: Document, env: Mapping[str, str] | None = None,
                     version: int = 1) -> Report:
    """Compile a parsed document. Never raises for problems in the spec: they are in the report.

    The bounds of `flowspec.limits` are checked first, whether or not the document came through
    `parse` (the admin API hands over data): the later stages are sized for documents within
    them, and the JSON Schema alone would spend many seconds on 10,000 nodes."""
    report = Report(source=doc.source, document=doc)
    report.diagnostics.extend(check_data_limits(doc.data, doc.source, document=doc))
    if report.errors:
        return report
    try:
        _compile_checked(doc, env, version, report)
    except RecursionError:
        # Documents within the depth limit leave ample stack; a caller already deep in its own
        # stack may still run out, and gets an answer rather than a traceback.
        report.graph = None
        report.diagnostics.append(doc.diagnostic(
            "limit.depth", "the document nests too deeply to be checked here", ""))
    return report


def _compile_checked(doc: Document, env: Mapping[str, str] | None, version: int,
                     report: Report) -> None:
    from pydantic import ValidationError

    from flowspec.spec.check import check_graph
    from flowspec.spec.models.graph import GraphSpec
    from flowspec.spec.validate import schema_diagnostics

    digest = content_hash(doc.data)
    report.diagnostics.extend(interpolate(doc, env))
    report.diagnostics.extend(schema_diagnostics(doc))
    if report.errors:
        return
    try:
        spec = GraphSpec.model_validate(doc.data)
    except ValidationError as exc:
        report.diagnostics.extend(_pydantic_diagnostics(doc, exc))
        return
    parts, found = check_graph(doc, spec)
    report.diagnostics.extend(found)
    report.diagnostics = sorted(dict.fromkeys(report.diagnostics),
                                key=lambda d: (d.line or 0, d.column or 0))
    if report.errors:
        return
    report.graph = CompiledGraph(
        name=spec.name,
        spec=spec,
        nodes=parts.nodes,
        edges=tuple(parts.edges),
        tools=parts.tools,
        entry=parts.entry,
        inserted=frozenset(parts.inserted),
        diagnostics=tuple(report.diagnostics),
        content_hash=digest,
        version=version,
        source=doc.source,
    )


def compile_text(text: str, source: str = "<spec>", env: Mapping[str, str] | None = None,
                 version: int = 1) -> Report:
    try:
        doc = parse(text, source)
    except SpecInvalid as exc:
        return Report(source=source, diagnostics=list(exc.diagnostics))
    return compile_document(doc, env, version)


def compile_file(path: str | Path, env: Mapping[str, str] | None = None) -> Report:
    """Compile a spec file. OSError (missing or unreadable file) and UnicodeDecodeError propagate
    to the caller; a file beyond the size limit is reported without being read whole."""
    try:
        text = read_text(path)
    except SpecInvalid as exc:
        return Report(source=str(path), diagnostics=list(exc.diagnostics))
    return compile_text(text, str(path), env)


def load_graph(path: str | Path, env: Mapping[str, str] | None = None) -> CompiledGraph:
    """Compile a spec file or raise SpecInvalid with every finding."""
    return compile_file(path, env).raise_for_errors()
