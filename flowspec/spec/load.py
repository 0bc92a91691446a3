"""Load a spec document (YAML or JSON) keeping the line and column of every key and value.

The loaded `Document` holds plain Python data (what the schema and the models see) and, per JSON
Pointer, where the value and its key stand in the source, so every later error can say
`file:line:col /pointer`. `${VAR}` / `${env:VAR:-default}` references are resolved here; pointers
whose value came from the environment are remembered so no message ever echoes them.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flowspec.errors import Diagnostic, SpecInvalid

Position = tuple[int, int]

_REFERENCE = re.compile(r"\$\$|\$\{(?:env:)?([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
_BAD_REFERENCE = re.compile(r"\$\{(?!(?:env:)?[A-Za-z_][A-Za-z0-9_]*(?::-[^}]*)?\})[^}]*\}?")


def escape_pointer_token(token: str | int) -> str:
    return str(token).replace("~", "~0").replace("/", "~1")


def join_pointer(pointer: str, token: str | int) -> str:
    return f"{pointer}/{escape_pointer_token(token)}"


@dataclass(slots=True)
class Document:
    """A loaded spec: plain data plus source positions (1-based) per JSON Pointer."""

    data: Any
    source: str = "<spec>"
    text: str = ""
    values: dict[str, Position] = field(default_factory=dict)
    keys: dict[str, Position] = field(default_factory=dict)
    interpolated: set[str] = field(default_factory=set)

    def position(self, pointer: str, *, key: bool = False) -> Position | None:
        """Where `pointer` stands; the nearest enclosing value when it is absent."""
        if key and pointer in self.keys:
            return self.keys[pointer]
        probe = pointer
        while True:
            if probe in self.values:
                return self.values[probe]
            if probe in self.keys:
                return self.keys[probe]
            if not probe:
                return None
            probe = probe.rsplit("/", 1)[0]

    def diagnostic(
        self, code: str, message: str, pointer: str, *, key: bool = False, **kw: Any
    ) -> Diagnostic:
        pos = self.position(pointer, key=key)
        return Diagnostic(
            code=code,
            message=message,
            source=self.source,
            line=pos[0] if pos else None,
            column=pos[1] if pos else None,
            pointer=pointer,
            **kw,
        )

    def get(self, pointer: str) -> Any:
        node = self.data
        for raw in pointer.split("/")[1:]:
            token = raw.replace("~1", "/").replace("~0", "~")
            if isinstance(node, list):
                node = node[int(token)]
            else:
                node = node[token]
        return node


def _plain(node: Any, pointer: str, doc: Document) -> Any:
    """Convert ruamel's round-trip objects to builtins, recording positions on the way."""
    from ruamel.yaml.comments import CommentedMap, CommentedSeq

    if isinstance(node, CommentedMap):
        out: dict[str, Any] = {}
        for key, value in node.items():
            child = join_pointer(pointer, str(key))
            try:
                kl, kc = node.lc.key(key)
                doc.keys[child] = (kl + 1, kc + 1)
                vl, vc = node.lc.value(key)
                doc.values[child] = (vl + 1, vc + 1)
            except (KeyError, TypeError, IndexError):
                pass
            out[_text(str(key))] = _plain(value, child, doc)
        return out
    if isinstance(node, CommentedSeq):
        items: list[Any] = []
        for index, value in enumerate(node):
            child = join_pointer(pointer, index)
            try:
                il, ic = node.lc.item(index)
                doc.values[child] = (il + 1, ic + 1)
            except (KeyError, TypeError, IndexError):
                pass
            items.append(_plain(value, child, doc))
        return items
    if isinstance(node, bool) or node is None:
        return node
    if isinstance(node, int):
        return int(node)
    if isinstance(node, float):
        return float(node)
    if isinstance(node, str):
        return _text(node)
    # Timestamps and other YAML-only scalars: keep their text so the schema reports a type error.
    return str(node)


def _text(value: str) -> str:
    """`value` as valid Unicode. YAML reads the JSON escape of a character beyond U+FFFF
    (`"\\ud83d\\ude00"`) as two surrogates: join such pairs, and replace a lone surrogate,
    which no encoder accepts, with U+FFFD."""
    if not any("\ud800" <= c <= "\udfff" for c in value):
        return str(value)
    return value.encode("utf-16", "surrogatepass").decode("utf-16", "replace")


def _syntax_error(exc: Exception, source: str) -> Diagnostic:
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    context = getattr(exc, "context", None)
    message = f"YAML syntax error: {problem}"
    if context and "duplicate key" not in str(problem):
        message += f" ({context})"
    code = "yaml.duplicate-key" if "duplicate key" in str(exc) else "yaml.syntax"
    if code == "yaml.duplicate-key":
        message = "a key appears twice in the same mapping; keep one"
    return Diagnostic(
        code=code,
        message=message,
        source=source,
        line=mark.line + 1 if mark is not None else None,
        column=mark.column + 1 if mark is not None else None,
        pointer="",
    )


def parse(text: str, source: str = "<spec>") -> Document:
    """Parse YAML (or JSON, a subset of it) into a Document. Raises SpecInvalid on syntax errors."""
    from ruamel.yaml import YAML
    from ruamel.yaml.error import YAMLError

    doc = Document(data=None, source=source, text=text)
    yaml = YAML(typ="rt")
    try:
        loaded = yaml.load(text)
    except YAMLError as exc:
        if source.endswith(".json"):
            try:
                json.loads(text)
            except json.JSONDecodeError as jexc:
                raise SpecInvalid([Diagnostic(
                    code="json.syntax", message=f"JSON syntax error: {jexc.msg}", source=source,
                    line=jexc.lineno, column=jexc.colno, pointer="")]) from None
        raise SpecInvalid([_syntax_error(exc, source)]) from None
    doc.values[""] = (1, 1)
    doc.data = _plain(loaded, "", doc)
    if doc.data is None:
        raise SpecInvalid([Diagnostic(
            code="spec.empty", message="the spec is empty", source=source, line=1, column=1)])
    return doc


def read(path: str | Path) -> Document:
    """Read and parse a spec file. I/O problems raise OSError for the caller to report."""
    p = Path(path)
    return parse(p.read_text(encoding="utf-8"), str(path))


def interpolate(doc: Document, env: Mapping[str, str] | None = None) -> list[Diagnostic]:
    """Replace `${VAR}` references in string values, in place. Returns the problems found."""
    environ = os.environ if env is None else env
    problems: list[Diagnostic] = []

    def resolve(value: str, pointer: str) -> str:
        if "$" not in value:
            return value
        bad = _BAD_REFERENCE.search(value.replace("$$", ""))
        if bad:
            problems.append(doc.diagnostic(
                "env.bad-reference",
                f"malformed reference {bad.group(0)!r}: write ${{NAME}} or ${{env:NAME:-default}}",
                pointer,
            ))
            return value

        def substitute(match: re.Match[str]) -> str:
            if match.group(0) == "$$":
                return "$"
            name, default = match.group(1), match.group(2)
            found = environ.get(name)
            if found is None:
                if default is not None:
                    return default
                problems.append(doc.diagnostic(
                    "env.missing",
                    f"environment variable {name} is not set and has no default",
                    pointer,
                    hint=f"set {name}, or write ${{{name}:-default}}",
                ))
                return ""
            doc.interpolated.add(pointer)
            return found

        return _REFERENCE.sub(substitute, value)

    def walk(node: Any, pointer: str) -> Any:
        if isinstance(node, dict):
            return {k: walk(v, join_pointer(pointer, k)) for k, v in node.items()}
        if isinstance(node, list):
            return [walk(v, join_pointer(pointer, i)) for i, v in enumerate(node)]
        if isinstance(node, str):
            return resolve(node, pointer)
        return node

    doc.data = walk(doc.data, "")
    return problems
