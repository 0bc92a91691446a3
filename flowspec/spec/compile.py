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
from flowspec.spec.compiled import CompiledGraph
from flowspec.spec.load import Document, interpolate, join_pointer, parse


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
    """Compile a parsed document. Never raises for problems in the spec: they are in the report."""
    from pydantic import ValidationError

    from flowspec.spec.check import check_graph
    from flowspec.spec.models.graph import GraphSpec
    from flowspec.spec.validate import schema_diagnostics

    report = Report(source=doc.source, document=doc)
    digest = content_hash(doc.data)
    report.diagnostics.extend(interpolate(doc, env))
    report.diagnostics.extend(schema_diagnostics(doc))
    if report.errors:
        return report
    try:
        spec = GraphSpec.model_validate(doc.data)
    except ValidationError as exc:
        report.diagnostics.extend(_pydantic_diagnostics(doc, exc))
        return report
    parts, found = check_graph(doc, spec)
    report.diagnostics.extend(found)
    report.diagnostics = sorted(dict.fromkeys(report.diagnostics),
                                key=lambda d: (d.line or 0, d.column or 0))
    if report.errors:
        return report
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
    return report


def compile_text(text: str, source: str = "<spec>", env: Mapping[str, str] | None = None,
                 version: int = 1) -> Report:
    try:
        doc = parse(text, source)
    except SpecInvalid as exc:
        return Report(source=source, diagnostics=list(exc.diagnostics))
    return compile_document(doc, env, version)


def compile_file(path: str | Path, env: Mapping[str, str] | None = None) -> Report:
    """Compile a spec file. OSError (missing or unreadable file) propagates to the caller."""
    text = Path(path).read_text(encoding="utf-8")
    return compile_text(text, str(path), env)


def load_graph(path: str | Path, env: Mapping[str, str] | None = None) -> CompiledGraph:
    """Compile a spec file or raise SpecInvalid with every finding."""
    return compile_file(path, env).raise_for_errors()
