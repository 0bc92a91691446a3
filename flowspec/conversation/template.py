"""`{{name}}` templates: per-call values in instructions, openings, idle prompts, tool
descriptions and webhook payloads.

The syntax is deliberately tiny — a name between double braces, spaces allowed inside — so a
template is never code: no expressions, filters, attribute access or loops, nothing a value can
escape into. `{{{{` is a literal `{{`. A value is inserted as text once, never re-read as a
template, so a caller's value that itself holds `{{secret}}` stays those characters.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

_TOKEN = re.compile(r"\{\{\{\{|\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}|\{\{")
"""An escaped `{{{{`, a placeholder, or a `{{` that starts neither (reported as malformed)."""

NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*$"


@dataclass(frozen=True, slots=True)
class Placeholder:
    """One `{{name}}` in a template: the name and where it starts in the text."""

    name: str
    offset: int


@dataclass(frozen=True, slots=True)
class Malformed:
    """A `{{` that is neither `{{name}}` nor the escape `{{{{`."""

    offset: int
    text: str


def scan(text: str) -> Iterator[Placeholder | Malformed]:
    """The placeholders of `text` in order, and the malformed openings among them."""
    if "{{" not in text:
        return
    for match in _TOKEN.finditer(text):
        token = match.group(0)
        if token == "{{{{":
            continue
        name = match.group(1)
        if name is None:
            yield Malformed(match.start(), text[match.start():match.start() + 24])
        else:
            yield Placeholder(name, match.start())


def names(text: str) -> list[str]:
    """The names `text` refers to, each once, in order of first use."""
    seen: dict[str, None] = {}
    for token in scan(text):
        if isinstance(token, Placeholder):
            seen.setdefault(token.name, None)
    return list(seen)


def render(text: str, values: Mapping[str, Any]) -> str:
    """`text` with each `{{name}}` replaced by its value as text (`true`/`false` for booleans,
    JSON-like), and `{{{{` by `{{`. A name with no value stays as written: validation has
    already refused templates naming undeclared variables, so this only happens for text that
    was never checked, and showing the placeholder is more honest than an empty string."""
    if "{{" not in text:
        return text

    def replace(match: re.Match[str]) -> str:
        token = match.group(0)
        if token == "{{{{":
            return "{{"
        name = match.group(1)
        if name is None or name not in values:
            return token
        return as_text(values[name])

    return _TOKEN.sub(replace, text)


def render_all(value: Any, values: Mapping[str, Any]) -> Any:
    """`value` with every string inside it (mappings and lists walked) rendered."""
    if isinstance(value, str):
        return render(value, values)
    if isinstance(value, Mapping):
        return {key: render_all(item, values) for key, item in value.items()}
    if isinstance(value, list):
        return [render_all(item, values) for item in value]
    return value


def as_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def fill_request(payload: Mapping[str, Any], values: Mapping[str, Any]) -> dict[str, Any]:
    """A session (Realtime) or request body (Responses) with its `instructions` and its tools'
    descriptions filled for one call; everything else is left as it is."""
    out = dict(payload)
    instructions = out.get("instructions")
    if isinstance(instructions, str):
        out["instructions"] = render(instructions, values)
    tools = out.get("tools")
    if isinstance(tools, list):
        out["tools"] = [{**tool, "description": render(tool["description"], values)}
                        if isinstance(tool, Mapping) and isinstance(tool.get("description"), str)
                        else tool for tool in tools]
    return out


def templated(payload: Mapping[str, Any]) -> bool:
    """Whether `fill_request` would change anything in `payload`: a `{{` in its instructions
    or a tool's description."""
    instructions = payload.get("instructions")
    if isinstance(instructions, str) and "{{" in instructions:
        return True
    tools = payload.get("tools")
    return isinstance(tools, list) and any(
        isinstance(t, Mapping) and "{{" in str(t.get("description") or "") for t in tools)
