"""The bounds of a spec document (`flowspec.limits`), checked while YAML is read and on plain data.

Reading YAML is where a small text turns large or deep: 342 bytes of nested aliases expand to
billions of values, 1,000 `[` exhaust the recursive composer, a 5,000-digit integer fails Python's
`int()`. So the parser is wrapped: every event is checked as the composer pulls it, and the first
event beyond a bound stops the read with a located diagnostic, before the composer nests deeper or
an alias is expanded. Data that never was YAML (the admin API's JSON) goes through
`check_data_limits`, which `compile_document` also runs, so every path is bounded.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from functools import cache
from typing import Any

from flowspec.errors import Diagnostic
from flowspec.limits import (
    MAX_ALIAS_EXPANSION,
    MAX_DEPTH,
    MAX_EDGES,
    MAX_NODES,
    MAX_NUMBER_DIGITS,
    MAX_TOOLS_PER_MODEL,
)
from flowspec.spec.load import Document, escape_pointer_token, join_pointer

_NUMBER_TAGS = ("tag:yaml.org,2002:int", "tag:yaml.org,2002:float")
# The smallest magnitudes with more digits (a sign counted) than MAX_NUMBER_DIGITS allows.
_TOO_BIG = 10 ** MAX_NUMBER_DIGITS
_TOO_SMALL = -(10 ** (MAX_NUMBER_DIGITS - 1))


class ReadRefused(Exception):
    """Raised inside the YAML reader to stop it at a located problem (a bound passed, a value
    YAML cannot build); `parse` turns it into SpecInvalid."""

    def __init__(self, diagnostic: Diagnostic) -> None:
        super().__init__(diagnostic.message)
        self.diagnostic = diagnostic


# -- messages, shared by the YAML guard and the data check ---------------------------------------

def _depth_message() -> str:
    return (f"mappings and lists nest deeper than {MAX_DEPTH} levels here; at most {MAX_DEPTH} "
            "levels are accepted")


def _digits_message(length: int) -> str:
    return (f"a number of {length:,} characters; at most {MAX_NUMBER_DIGITS} are accepted "
            "(digits and sign)")


def _nodes_message(count: int | None) -> str:
    many = f"{count:,}" if count is not None else f"more than {MAX_NODES:,}"
    return f"the spec has {many} nodes; at most {MAX_NODES:,} are accepted"


def _edges_message() -> str:
    return (f"the edges make more than {MAX_EDGES:,} links (each `a -> b` of a chain counts "
            f"one); at most {MAX_EDGES:,} are accepted")


def _tools_message(count: int | None) -> str:
    many = f"{count:,}" if count is not None else f"more than {MAX_TOOLS_PER_MODEL}"
    return (f"the node lists {many} tools; at most {MAX_TOOLS_PER_MODEL} are accepted (OpenAI's "
            "own limit for one session or request)")


def _links(edge: Any) -> int:
    return max(1, edge.count("->")) if isinstance(edge, str) else 1


# -- the YAML guard ----------------------------------------------------------------------------

_NODES, _NODE, _EDGES, _TOOLS = 1, 2, 3, 4


class _Frame:
    """One open mapping or sequence while the document is read."""

    __slots__ = ("anchor", "count", "expect_key", "index", "key", "mapping", "role", "size",
                 "token")

    def __init__(self, mapping: bool, token: str | int | None, anchor: str | None,
                 role: int) -> None:
        self.mapping = mapping
        self.token = token  # where it stands in its parent (None for a key)
        self.anchor = anchor
        self.role = role  # _NODES, _NODE, _EDGES, _TOOLS or 0: what to count inside it
        self.size = 0  # values inside it, aliases expanded
        self.count = 0  # nodes, edge links or tools seen, by role
        self.expect_key = True
        self.key: str | None = None
        self.index = 0


class EventGuard:
    """Checks each parser event against the bounds; raises ReadRefused at the first beyond one."""

    def __init__(self, source: str, resolve: Callable[..., Any]) -> None:
        from ruamel.yaml.events import (
            AliasEvent,
            CollectionEndEvent,
            MappingStartEvent,
            ScalarEvent,
            SequenceStartEvent,
        )
        from ruamel.yaml.nodes import ScalarNode

        self._scalar, self._alias_event, self._end = ScalarEvent, AliasEvent, CollectionEndEvent
        self._mapping, self._sequence = MappingStartEvent, SequenceStartEvent
        self.source = source
        self._node_kind = ScalarNode
        self._resolve: Callable[..., Any] = resolve
        self.stack: list[_Frame] = []
        self.anchors: dict[str, int] = {}
        self.open_anchors: set[str] = set()
        self.expanded = 0
        self.last: Any = None

    def see(self, event: Any) -> None:
        self.last = event
        if isinstance(event, self._scalar):
            self._digits(event, self._place(event, event.value))
            if event.anchor:
                self.anchors[event.anchor] = 1
            if self.stack:
                self.stack[-1].size += 1
        elif isinstance(event, self._alias_event):
            self._alias(event)
        elif isinstance(event, self._mapping | self._sequence):
            self._open(event, isinstance(event, self._mapping))
        elif isinstance(event, self._end):
            frame = self.stack.pop()
            size = frame.size + 1
            if frame.anchor:
                self.anchors[frame.anchor] = size
                self.open_anchors.discard(frame.anchor)
            if self.stack:
                self.stack[-1].size += size

    def pointer(self, token: str | int | None = None) -> str:
        """Where the reader stands: the JSON Pointer of the open collections (and `token` in the
        innermost); inside a mapping's key, the nearest place outside it."""
        pointer = ""
        for step in [f.token for f in self.stack[1:]] + [token]:
            if step is None:
                break
            pointer += f"/{escape_pointer_token(step)}"
        return pointer

    def fail(self, code: str, message: str, event: Any, token: str | int | None = None,
             hint: str | None = None) -> ReadRefused:
        mark = event.start_mark
        return ReadRefused(Diagnostic(code=code, message=message, source=self.source,
                                        line=mark.line + 1, column=mark.column + 1,
                                        pointer=self.pointer(token), hint=hint))

    def _place(self, event: Any, scalar: str | None = None) -> str | int | None:
        """Account a new value in its parent; returns its key or index there (None for a key)."""
        if not self.stack:
            return None
        parent = self.stack[-1]
        if parent.mapping:
            if parent.expect_key:
                parent.expect_key = False
                parent.key = scalar
                if parent.role == _NODES:
                    parent.count += 1
                    if parent.count > MAX_NODES:
                        raise self.fail("limit.nodes", _nodes_message(None), event, scalar)
                return None
            parent.expect_key = True
            return parent.key
        index = parent.index
        parent.index += 1
        if parent.role == _EDGES:
            parent.count += _links(scalar)
            if parent.count > MAX_EDGES:
                raise self.fail("limit.edges", _edges_message(), event, index)
        elif parent.role == _TOOLS:
            parent.count += 1
            if parent.count > MAX_TOOLS_PER_MODEL:
                raise self.fail("limit.tools", _tools_message(None), event, index)
        return index

    def _open(self, event: Any, mapping: bool) -> None:
        token = self._place(event)
        depth = len(self.stack) + 1
        if depth > MAX_DEPTH:
            raise self.fail("limit.depth", _depth_message(), event, token)
        role = 0
        parent = self.stack[-1] if self.stack else None
        if parent is not None and token is not None:
            if depth == 2 and token == "nodes" and mapping:
                role = _NODES
            elif depth == 2 and token == "edges" and not mapping:
                role = _EDGES
            elif parent.role == _NODES and mapping:
                role = _NODE
            elif parent.role == _NODE and token == "tools" and not mapping:
                role = _TOOLS
        anchor = event.anchor or None
        if anchor:
            self.open_anchors.add(anchor)
        self.stack.append(_Frame(mapping, token, anchor, role))

    def _alias(self, event: Any) -> None:
        token = self._place(event)
        name = event.anchor
        if name in self.open_anchors:
            raise self.fail("limit.aliases", f"alias *{name} stands inside the mapping or list "
                            f"&{name} names, so it would expand without end", event, token)
        size = self.anchors.get(name, 1)  # an undefined alias is the composer's error
        self.expanded += size
        if self.expanded > MAX_ALIAS_EXPANSION:
            raise self.fail("limit.aliases", f"YAML aliases would add more than "
                            f"{MAX_ALIAS_EXPANSION:,} values to the document once expanded; at "
                            f"most {MAX_ALIAS_EXPANSION:,} are accepted", event, token,
                            hint="write the repeated parts out, or use fewer aliases")
        if self.stack:
            self.stack[-1].size += size

    def _digits(self, event: Any, token: str | int | None) -> None:
        value = event.value
        if len(value) <= MAX_NUMBER_DIGITS:
            return
        tag = event.tag
        if tag is None and event.implicit[0]:  # plain: the type YAML reads it as
            tag = self._resolve(self._node_kind, value, (True, False))
        if str(tag) in _NUMBER_TAGS:
            raise self.fail("limit.digits", _digits_message(len(value)), event, token,
                            hint="quote it if it is text")


@cache
def bounded_loader_classes() -> tuple[type[Any], type[Any], type[Any]]:
    """ruamel's round-trip scanner, parser and constructor, bounded: the parser has an EventGuard
    (set as `guard`) see every event, the scanner refuses flow nesting beyond the depth limit
    as it reads it, and the constructor turns a value it cannot build into a located error."""
    from ruamel.yaml.constructor import RoundTripConstructor
    from ruamel.yaml.parser import RoundTripParser
    from ruamel.yaml.scanner import RoundTripScanner

    class BoundedScanner(RoundTripScanner):
        def fetch_flow_collection_start(self, token_class: Any, to_push: str) -> None:
            # The scanner reads up to 1,024 characters ahead of the parser in flow context (a
            # `[` may start a key) and spends time on every open level for each token: refuse
            # here, before that lookahead grows with the nesting.
            if len(self.flow_context) >= MAX_DEPTH:
                guard = self.loader.parser.guard
                mark = self.reader.get_mark()
                raise ReadRefused(Diagnostic(
                    code="limit.depth", message=_depth_message(), source=guard.source,
                    line=mark.line + 1, column=mark.column + 1, pointer=guard.pointer()))
            super().fetch_flow_collection_start(token_class, to_push)

    class BoundedParser(RoundTripParser):
        guard: EventGuard

        def _pull(self) -> None:
            if self.current_event is None and self.state:
                self.current_event = self.state()
                self.guard.see(self.current_event)

        def check_event(self, *choices: Any) -> bool:
            self._pull()
            return bool(super().check_event(*choices))

        def peek_event(self) -> Any:
            self._pull()
            return super().peek_event()

        def get_event(self) -> Any:
            self._pull()
            return super().get_event()

    class BoundedConstructor(RoundTripConstructor):
        def construct_object(self, node: Any, deep: bool = False) -> Any:
            try:
                return super().construct_object(node, deep)
            except (ValueError, KeyError, TypeError, ArithmeticError) as exc:
                # `2020-13-45` reads as a date, `!!int abc` asks for an integer: neither exists.
                mark = node.start_mark
                kind = str(node.tag).rsplit(":", 1)[-1]
                detail = "" if isinstance(exc, KeyError) else f": {exc}"
                raise ReadRefused(Diagnostic(
                    code="yaml.bad-value", source=self.loader.parser.guard.source,
                    line=mark.line + 1, column=mark.column + 1,
                    message=f"YAML cannot read {_show(node.value)} as a {kind}{detail}",
                    hint="quote it to keep it text")) from None

    return BoundedScanner, BoundedParser, BoundedConstructor


def _show(value: Any) -> str:
    text = repr(value) if isinstance(value, str) else "this value"
    return text if len(text) <= 40 else text[:37] + "…'"


# -- plain data ----------------------------------------------------------------------------------

def check_data_limits(data: Any, source: str = "<spec>", *,
                      document: Document | None = None) -> list[Diagnostic]:
    """Every bound `data` breaks: nesting depth, integers longer than MAX_NUMBER_DIGITS, and the
    node, edge and tool counts. Located by pointer, and by line too when `document` (the data's
    Document) is given. Iterative, so no depth of data makes it recurse."""
    doc = document if document is not None else Document(data=data, source=source)
    found: list[Diagnostic] = []
    deep = False
    for value, path, level in _walk(data):
        if level > MAX_DEPTH:
            if not deep:  # one finding says it; the values below would repeat it
                found.append(doc.diagnostic("limit.depth", _depth_message(), _pointer(path)))
                deep = True
        elif isinstance(value, int) and not isinstance(value, bool) \
                and not _TOO_SMALL < value < _TOO_BIG:
            length = value.bit_length() * 30103 // 100000 + 1  # log10(2): no str() of it
            found.append(doc.diagnostic("limit.digits", _digits_message(length), _pointer(path)))
    if not isinstance(data, dict):
        return found
    nodes = data.get("nodes")
    if isinstance(nodes, dict):
        if len(nodes) > MAX_NODES:
            found.append(doc.diagnostic("limit.nodes", _nodes_message(len(nodes)), "/nodes",
                                        key=True))
        for node_id, node in nodes.items():
            tools = node.get("tools") if isinstance(node, dict) else None
            if isinstance(tools, list) and len(tools) > MAX_TOOLS_PER_MODEL:
                found.append(doc.diagnostic("limit.tools", _tools_message(len(tools)),
                                            join_pointer(f"/nodes/{escape_pointer_token(node_id)}",
                                                         "tools"), key=True))
    edges = data.get("edges")
    if isinstance(edges, list):
        links = 0
        for index, edge in enumerate(edges):
            links += _links(edge)
            if links > MAX_EDGES:
                found.append(doc.diagnostic("limit.edges", _edges_message(),
                                            join_pointer("/edges", index)))
                break
    return found


_Path = tuple[Any, ...] | None  # (parent path, token), built only for values that need a pointer


def _walk(data: Any) -> Iterator[tuple[Any, _Path, int]]:
    """Every value with its path and nesting level (a top-level mapping is level 1); nothing below
    MAX_DEPTH + 1 is entered."""
    stack: list[tuple[Any, _Path, int]] = [(data, None, 0)]
    while stack:
        value, path, level = stack.pop()
        if isinstance(value, dict | list):
            level += 1
            yield value, path, level
            if level > MAX_DEPTH:
                continue
            items = value.items() if isinstance(value, dict) else enumerate(value)
            stack.extend((item, (path, token), level) for token, item in items)
        else:
            yield value, path, level


def _pointer(path: _Path) -> str:
    tokens: list[Any] = []
    while path is not None:
        path, token = path
        tokens.append(token)
    return "".join(f"/{escape_pointer_token(t)}" for t in reversed(tokens))
