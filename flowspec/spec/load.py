"""Load a spec document (YAML or JSON) keeping the line and column of every key and value.

The loaded `Document` holds plain Python data (what the schema and the models see) and, per JSON
Pointer, where the value and its key stand in the source, so every later error can say
`file:line:col /pointer`. `${VAR}` / `${env:VAR:-default}` references are resolved here; pointers
whose value came from the environment are remembered so no message ever echoes them.

Reading is bounded by `flowspec.limits`: a document over the size limit is refused before it is
parsed, and the parser stops at the first event beyond another bound (`flowspec.spec.bounds`).
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
from flowspec.limits import MAX_DOCUMENT_BYTES

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
            out[text_value(str(key))] = _plain(value, child, doc)
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
        return text_value(node)
    # Timestamps and other YAML-only scalars: keep their text so the schema reports a type error.
    return str(node)


def text_value(value: str) -> str:
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
        # The parser's text quotes both values whole; the key is what the author looks for.
        key = re.search(r'duplicate key "((?:[^"\\]|\\.)*)"', str(problem))
        named = f"key {key.group(1)!r}" if key else "a key"
        message = f"{named} appears twice in the same mapping; keep one"
    return Diagnostic(
        code=code,
        message=message,
        source=source,
        line=mark.line + 1 if mark is not None else None,
        column=mark.column + 1 if mark is not None else None,
        pointer="",
    )


def size_diagnostic(text: str, source: str) -> Diagnostic | None:
    """The `limit.size` finding when `text` is larger than MAX_DOCUMENT_BYTES in UTF-8, located
    where the limit falls; None when it fits."""
    if len(text) * 4 <= MAX_DOCUMENT_BYTES:  # no text of this length can be too big
        return None
    encoded = text.encode("utf-8", "surrogatepass")
    if len(encoded) <= MAX_DOCUMENT_BYTES:
        return None
    return _too_big(encoded, len(encoded), source)


def _too_big(start: bytes, size: int, source: str) -> Diagnostic:
    head = start[:MAX_DOCUMENT_BYTES].decode("utf-8", "ignore")
    return Diagnostic(
        code="limit.size", source=source, line=head.count("\n") + 1,
        column=len(head) - head.rfind("\n"),
        message=f"the document is {size:,} bytes; at most {MAX_DOCUMENT_BYTES:,} bytes (1 MiB) "
        "are accepted")


def read_text(path: str | Path) -> str:
    """A spec file's text, reading no more than the size limit allows. Raises SpecInvalid
    (`limit.size`) for a larger file, OSError and UnicodeDecodeError as reading does."""
    with open(path, "rb") as stream:
        raw = stream.read(MAX_DOCUMENT_BYTES + 1)
        if len(raw) > MAX_DOCUMENT_BYTES:
            size = os.fstat(stream.fileno()).st_size
            raise SpecInvalid([_too_big(raw, max(size, len(raw)), str(path))])
    text = raw.decode("utf-8")
    # As Path.read_text does: universal newlines, so positions match what editors show.
    return text.replace("\r\n", "\n").replace("\r", "\n")


def parse(text: str, source: str = "<spec>") -> Document:
    """Parse YAML (or JSON, a subset of it) into a Document. Raises SpecInvalid, and nothing else,
    for text that is not a spec document: syntax errors, and documents beyond a bound of
    `flowspec.limits` (size, nesting, alias expansion, number length, node, edge and tool
    counts), each located at the first place the bound is passed."""
    from ruamel.yaml import YAML
    from ruamel.yaml.error import YAMLError
    from ruamel.yaml.reader import ReaderError

    from flowspec.spec.bounds import EventGuard, ReadRefused, bounded_loader_classes
    from flowspec.spec.fast_read import read_plain

    too_big = size_diagnostic(text, source)
    if too_big is not None:
        raise SpecInvalid([too_big])
    doc = Document(data=None, source=source, text=text)
    try:
        fast = read_plain(text, source, doc)
    except ReadRefused as exc:
        raise SpecInvalid([exc.diagnostic]) from None
    if fast is not None:
        return _loaded(doc, fast[0], source)
    yaml = YAML(typ="rt")
    yaml.Scanner, yaml.Parser, yaml.Constructor = bounded_loader_classes()
    guard = yaml.parser.guard = EventGuard(source, yaml.resolver.resolve)
    try:
        loaded = yaml.load(text)
    except ReadRefused as exc:
        raise SpecInvalid([exc.diagnostic]) from None
    except ReaderError as exc:
        raise SpecInvalid([_reader_error(exc, text, source)]) from None
    except YAMLError as exc:
        if source.endswith(".json"):
            _raise_json_error(text, source)
        raise SpecInvalid([_syntax_error(exc, source)]) from None
    except (RecursionError, MemoryError, ValueError, TypeError, KeyError, IndexError,
            AttributeError, ArithmeticError) as exc:
        # The bounds keep ruamel away from these; should one still escape, it is located at
        # the last event read rather than shown as a traceback.
        mark = getattr(guard.last, "start_mark", None)
        raise SpecInvalid([Diagnostic(
            code="yaml.syntax", message=f"YAML cannot be read here: {type(exc).__name__}",
            source=source, line=mark.line + 1 if mark else 1,
            column=mark.column + 1 if mark else 1)]) from None
    return _loaded(doc, _plain(loaded, "", doc), source)


def _loaded(doc: Document, data: Any, source: str) -> Document:
    doc.values[""] = (1, 1)
    doc.data = data
    if doc.data is None:
        raise SpecInvalid([Diagnostic(
            code="spec.empty", message="the spec is empty", source=source, line=1, column=1)])
    return doc


def _reader_error(exc: Exception, text: str, source: str) -> Diagnostic:
    """ruamel reports a character it refuses (NUL, other control characters) by its offset."""
    position = getattr(exc, "position", None)
    character = getattr(exc, "character", None)
    line = column = None
    if isinstance(position, int) and 0 <= position <= len(text):
        line = text.count("\n", 0, position) + 1
        column = position - text.rfind("\n", 0, position)
    shown = f"U+{character:04X}" if isinstance(character, int) else "a character"
    return Diagnostic(
        code="yaml.syntax", source=source, line=line, column=column, pointer="",
        message=f"YAML syntax error: {shown} is not a printable character; YAML allows none "
        "(NUL and other control characters among them) in a document",
        hint="remove it; in a double-quoted string an escape such as \\x01 stands for it")


def _raise_json_error(text: str, source: str) -> None:
    """Raise JSON's own message for a .json spec YAML could not read, when JSON has one."""
    from flowspec.limits import InputTooComplex, loads

    try:
        loads(text)
    except InputTooComplex:
        return
    except json.JSONDecodeError as jexc:
        raise SpecInvalid([Diagnostic(
            code="json.syntax", message=f"JSON syntax error: {jexc.msg}", source=source,
            line=jexc.lineno, column=jexc.colno, pointer="")]) from None


def read(path: str | Path) -> Document:
    """Read and parse a spec file. I/O problems raise OSError for the caller to report; a file
    beyond the size limit raises SpecInvalid without being read whole."""
    return parse(read_text(path), str(path))


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
