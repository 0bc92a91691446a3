"""The emulator's deterministic "model": what to answer for one turn.

Asked for exact words (`flowspec.conversation.driver.say_instruction`), it says them. Otherwise,
without a script rule, it echoes the input in a short sentence, calls a tool when the user's words
name one of the available tools (arguments filled from the tool's JSON Schema), and, after a tool
output, reports it. A matching script rule overrides any of that.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from flowspec.conversation.driver import said_words
from flowspec.emulator.script import Failure, Script, ToolCall, Turn
from flowspec.emulator.wire import JSONObject

_MAX_ECHO = 160
_GENERIC = frozenset(
    "get set fetch lookup look up check find do make create list run call query search the a an "
    "to for of by".split()
)


@dataclass(frozen=True, slots=True)
class Plan:
    """One response's content and the faults staged around it."""

    text: str | None = None
    calls: tuple[ToolCall, ...] = ()
    failure: Failure | None = None
    drop: bool = False
    stall_ms: int = 0
    after_chunks: int = 0
    rule: str | None = None


def plan_reply(
    turn: Turn, tools: list[JSONObject], tool_choice: Any, script: Script | None
) -> Plan:
    exact = said_words(turn.instructions)
    if exact is not None:
        # Asked for these exact words (a conversation's opening, goodbye, idle prompt): a
        # model that follows its instructions says them, whatever the script says of turns.
        return Plan(text=exact)
    rule = script.match(turn) if script is not None else None
    if rule is not None:
        label = rule.name or f"rules[{rule.index}]"
        faults: JSONObject = {
            "failure": rule.fail,
            "drop": rule.drop,
            "stall_ms": rule.stall_ms,
            "after_chunks": rule.after_chunks,
            "rule": label,
        }
        if rule.say is not None or rule.calls:
            calls = tuple(_complete(call, tools) for call in rule.calls)
            return Plan(text=rule.say, calls=calls, **faults)
        default = _default(turn, tools, tool_choice)
        return Plan(text=default.text, calls=default.calls, **faults)
    return _default(turn, tools, tool_choice)


def _default(turn: Turn, tools: list[JSONObject], tool_choice: Any) -> Plan:
    functions = [tool for tool in tools if tool.get("type", "function") == "function"]
    if turn.kind == "tool_output":
        return Plan(text=f"The tool returned: {_clip(turn.text)}")
    if tool_choice != "none" and functions:
        chosen = _chosen_tool(turn.text, functions, tool_choice)
        if chosen is not None:
            schema = chosen.get("parameters") or {}
            return Plan(calls=(ToolCall(chosen["name"], fill_arguments(schema)),))
    if not turn.text.strip():
        return Plan(text="I am listening.")
    return Plan(text=f"You said: {_clip(turn.text)}")


def _chosen_tool(text: str, functions: list[JSONObject], tool_choice: Any) -> JSONObject | None:
    if isinstance(tool_choice, dict) and tool_choice.get("type") == "function":
        forced = tool_choice.get("name")
        return next((tool for tool in functions if tool["name"] == forced), None)
    words = set(_words(text))
    for tool in functions:
        name = str(tool["name"])
        # "get_weather" is named by "what's the weather": generic verbs do not have to be said.
        needed = [word for word in _words(name) if word not in _GENERIC] or _words(name)
        if name.lower() in text.lower() or all(word in words for word in needed):
            return tool
    return functions[0] if tool_choice == "required" else None


def _words(text: str) -> list[str]:
    """Lower-case words; splits snake_case and camelCase names too."""
    spaced = re.sub(r"([a-z0-9])([A-Z])", r"\1 \2", text)
    return re.findall(r"[a-z0-9]+", spaced.lower())


def _complete(call: ToolCall, tools: list[JSONObject]) -> ToolCall:
    """A scripted call without arguments gets them from the tool's schema, like a default call."""
    if call.arguments:
        return call
    tool = next((tool for tool in tools if tool.get("name") == call.name), None)
    if tool is None:
        return call
    return ToolCall(call.name, fill_arguments(tool.get("parameters") or {}))


def fill_arguments(schema: Any) -> JSONObject:
    """Arguments that satisfy a function tool's JSON Schema: every required property, filled."""
    value = example_value(schema)
    return value if isinstance(value, dict) else {}


def example_value(schema: Any, depth: int = 0) -> Any:
    if not isinstance(schema, dict) or depth > 8:
        return None
    for key in ("const", "default"):
        if key in schema:
            return schema[key]
    if schema.get("enum"):
        return schema["enum"][0]
    if isinstance(schema.get("examples"), list) and schema["examples"]:
        return schema["examples"][0]
    for key in ("anyOf", "oneOf", "allOf"):
        if isinstance(schema.get(key), list) and schema[key]:
            return example_value(schema[key][0], depth + 1)
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind == "object" or (kind is None and "properties" in schema):
        properties = schema.get("properties") or {}
        required = schema.get("required") or list(properties)
        return {
            name: example_value(properties.get(name, {}), depth + 1)
            for name in required
            if name in properties
        }
    if kind == "array":
        count = int(schema.get("minItems", 0))
        return [example_value(schema.get("items", {}), depth + 1) for _ in range(count)]
    if kind in ("integer", "number"):
        low = schema.get("minimum", schema.get("exclusiveMinimum"))
        number = 1.0 if not isinstance(low, int | float) else float(low)
        if "exclusiveMinimum" in schema:
            number += 1
        return int(number) if kind == "integer" else number
    if kind == "boolean":
        return True
    if kind == "null":
        return None
    return _string_example(schema)


def _string_example(schema: JSONObject) -> str:
    formats = {"date": "2025-01-01", "date-time": "2025-01-01T12:00:00Z", "email": "a@example.com"}
    if schema.get("format") in formats:
        return formats[schema["format"]]
    text = "example"
    min_length = int(schema.get("minLength", 0))
    return text.ljust(min_length, "x")


def arguments_json(call: ToolCall) -> str:
    return json.dumps(call.arguments, separators=(", ", ": "))


def _clip(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= _MAX_ECHO else text[: _MAX_ECHO - 1] + "…"
