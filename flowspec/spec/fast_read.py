"""Reading a spec's YAML through libyaml (ruamel's C parser), when it is installed.

The pure-Python round-trip reader costs about a millisecond per node of a spec, most of it in
scanning and gathering comments a spec check never uses; libyaml reads the same events some
thirty times faster. The events go through the same `EventGuard` as the pure reader's, so every
bound is checked as before, and a small builder turns them into the plain data and positions a
`Document` holds.

The builder takes the plain subset of YAML specs are written in: mappings, lists and untagged
scalars that read as text, numbers, booleans or null. Anything else (anchors and aliases, tags,
merge keys, keys that are not text, a key given twice, directives, a second document, a character
the pure reader refuses, text libyaml cannot parse) makes `read_plain` return None, and the caller
reads the text with the pure reader: its data and its located errors stay the reference, and the
two agree on everything the builder accepts (`tests/spec/test_fast_read.py` compares them).
"""

from __future__ import annotations

import re
from functools import cache
from typing import Any

from flowspec.spec.bounds import EventGuard, ReadRefused
from flowspec.spec.load import Document, Position, join_pointer, text_value

_STR = "tag:yaml.org,2002:str"
_NULL = "tag:yaml.org,2002:null"
_BUILT = frozenset({"tag:yaml.org,2002:bool", "tag:yaml.org,2002:int", "tag:yaml.org,2002:float"})


# The pure reader refuses some tabs libyaml takes, and libyaml counts YAML 1.1's line breaks
# (NEL, the Unicode line and paragraph separators) as lines, the pure reader does not.
_DIFFERENT = re.compile("[\t\x85\u2028\u2029]")


class _Unusual(Exception):
    """The document leaves the plain subset: the pure reader reads it instead."""


class _Open:
    """A mapping or list being filled."""

    __slots__ = ("container", "flow", "key", "key_pointer", "pointer")

    def __init__(self, container: dict[str, Any] | list[Any], pointer: str, flow: bool) -> None:
        self.container = container
        self.pointer = pointer
        self.flow = flow
        self.key: str | None = None  # a mapping's key waiting for its value
        self.key_pointer = ""


@cache
def _tools() -> tuple[Any, Any, Any, Any] | None:
    """libyaml's parser, the YAML 1.2 resolver and constructor the pure reader uses, and the
    scalar node type; None when the C parser is not installed."""
    try:
        from _ruamel_yaml_clibz import CParser  # type: ignore[import-not-found]
    except ImportError:
        return None
    from ruamel.yaml import YAML
    from ruamel.yaml.nodes import ScalarNode

    yaml = YAML(typ="rt")
    return CParser, yaml.resolver, yaml.constructor, ScalarNode


def available() -> bool:
    return _tools() is not None


def read_plain(text: str, source: str, doc: Document) -> tuple[Any] | None:
    """The document's data as a one-element tuple (its positions recorded in `doc`), or None
    when the pure reader must read it. Raises ReadRefused at the first bound passed."""
    tools = _tools()
    if tools is None:
        return None
    from ruamel.yaml.reader import Reader

    if _DIFFERENT.search(text) or Reader.NON_PRINTABLE.search(text):
        return None
    parser_type, resolver, constructor, scalar_node = tools
    guard = EventGuard(source, resolver.resolve)
    values: dict[str, Position] = {}
    keys: dict[str, Position] = {}
    try:
        data = _build(text, parser_type(text), guard, resolver.resolve, constructor,
                      scalar_node, values, keys)
    except _Unusual:
        return None
    except ReadRefused as exc:
        if exc.diagnostic.code != "limit.depth":
            raise
        # The pure reader refuses nesting in its scanner, at the open collection's place
        # rather than a hundred levels inside it: its words are the ones to show.
        return None
    except Exception:  # noqa: BLE001 - libyaml's syntax errors: the pure reader locates them
        return None
    doc.values.update(values)
    doc.keys.update(keys)
    return (data,)


def _build(text: str, parser: Any, guard: EventGuard, resolve: Any, constructor: Any,
           scalar_node: Any, values: dict[str, Position], keys: dict[str, Position]) -> Any:
    from ruamel.yaml.events import (
        DocumentEndEvent,
        DocumentStartEvent,
        MappingEndEvent,
        MappingStartEvent,
        ScalarEvent,
        SequenceEndEvent,
        SequenceStartEvent,
        StreamEndEvent,
        StreamStartEvent,
    )

    stack: list[_Open] = []
    root: Any = None
    documents = 0
    empty: str | None = None  # where an empty value stands, which the next event places
    breaks = text.count("\n")
    lines: list[str] = text.split("\n") if "#" in text else []
    while True:
        event = parser.get_event()
        guard.see(event)
        kind = type(event)
        if empty is not None:
            # The pure reader places a block mapping's empty value where the next token
            # starts; libyaml places it where the `:` before it ends.
            mark = event.start_mark
            if mark.line <= breaks:
                values[empty] = (mark.line + 1, mark.column + 1)
            else:  # libyaml ends a text with no last line break on a line of its own
                values[empty] = (breaks + 1, len(text) - text.rfind("\n"))
            empty = None
        if kind is ScalarEvent:
            if event.anchor or event.tag:
                raise _Unusual
            value = _scalar(event, resolve, constructor, scalar_node)
        elif kind is MappingStartEvent or kind is SequenceStartEvent:
            if event.anchor or event.tag:
                raise _Unusual
            value = {} if kind is MappingStartEvent else []
        elif kind is MappingEndEvent or kind is SequenceEndEvent:
            stack.pop()
            continue
        elif kind is StreamStartEvent:
            continue
        elif kind is DocumentStartEvent:
            documents += 1
            if documents > 1 or event.version or event.tags:
                raise _Unusual
            continue
        elif kind is DocumentEndEvent:
            continue
        elif kind is StreamEndEvent:
            return root
        else:  # an alias
            raise _Unusual
        mark = event.start_mark
        position = (mark.line + 1, mark.column + 1)
        pointer = ""
        if not stack:
            root = value
        else:
            parent = stack[-1]
            container = parent.container
            if isinstance(container, list):
                pointer = join_pointer(parent.pointer, len(container))
                values[pointer] = position
                container.append(value)
            elif parent.key is None:
                # A key that is not text is shown as the pure reader's str() of it; a key
                # given twice is its located error.
                # A key with surrogates is joined in the data but kept as read in its pointer.
                if not isinstance(value, str) or value in container or value != event.value:
                    raise _Unusual
                parent.key = value
                parent.key_pointer = join_pointer(parent.pointer, value)
                keys[parent.key_pointer] = position
                continue
            else:
                pointer = parent.key_pointer
                if kind is ScalarEvent and not event.value and not event.style:
                    if parent.flow or _comment_follows(lines, event.start_mark):
                        raise _Unusual  # `{a: }`, `a:  # note`: placed differently again
                    empty = pointer
                values[pointer] = position
                container[parent.key] = value
                parent.key = None
        if kind is not ScalarEvent:
            stack.append(_Open(value, pointer, bool(event.flow_style)))


def _comment_follows(lines: list[str], mark: Any) -> bool:
    line: int = mark.line
    return line < len(lines) and lines[line][mark.column:].lstrip().startswith("#")


def _scalar(event: Any, resolve: Any, constructor: Any, scalar_node: Any) -> Any:
    value: str = event.value
    if event.style:  # quoted or a block scalar: text
        return text_value(value)
    tag = str(resolve(scalar_node, value, (True, False)))
    if tag == _STR:
        return text_value(value)
    if tag == _NULL:
        return None
    if tag not in _BUILT:
        raise _Unusual  # timestamps and the like: the pure reader keeps their text
    # The tag's own constructor, not construct_object: that one remembers every node it built.
    built = constructor.yaml_constructors[tag](constructor, scalar_node(
        tag, value, event.start_mark, event.end_mark))
    if isinstance(built, bool):
        return built
    return int(built) if tag.endswith(":int") else float(built)
