"""Reply scripts: rules that stage what the emulator answers, including faults.

A script is YAML or JSON (JSON is read as YAML)::

    audio_transcripts:            # what successive audio turns "said" (optional)
      - what is the weather in Paris
    rules:                        # first matching rule wins; no match = default behaviour
      - name: weather             # optional, shows up in errors and records
        when:                     # every given condition must hold; omit `when` to always match
          contains: weather       # case-insensitive substring of the latest input text
          regex: "^book"          # Python regex, searched case-insensitively
          api: realtime           # realtime | responses | speech (a speech rule is matched
                                  # only by speech requests, and only `fail`, `drop` and
                                  # `stall_ms` apply)
          turn: 2                 # the Nth response on this connection (1-based)
          input: audio            # text | audio | tool_output
          instructions: pirate    # case-insensitive substring of the session's instructions
          event: response         # response (default) | session.update: the rule answers a
                                  # client's session.update (`contains` searches its JSON);
                                  # only `fail` applies, as the error answer to that update
        times: 1                  # fire at most this many times (default: unlimited)
        say: It is sunny.         # reply text (spoken on an audio session)
        call: {name: get_weather, arguments: {city: Paris}}   # or a list of calls
        fail: {type: server_error, code: overloaded, message: Try later, status: 503,
               stage: before}     # before: error reply, no response; stream: response fails
        drop: true                # close the socket (or HTTP stream) abruptly
        stall_ms: 1500            # pause before the first output (or before the fault)
        after_chunks: 3           # let this many output deltas out before stall/fail/drop

Without `say`/`call` a rule keeps the default reply. Faults (stall, `fail` at stage `stream`,
`drop`) happen after `response.created` (and `response.in_progress`) and after `after_chunks`
output deltas (text, audio or argument deltas; transcript deltas do not count); when the reply
has fewer chunks the fault happens just before the final event. A call without `arguments` gets
them from the tool's JSON Schema.

Bad scripts raise `SpecInvalid` whose diagnostics carry file, line, column and a JSON pointer.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from ruamel.yaml import YAML
from ruamel.yaml.error import MarkedYAMLError

from flowspec.emulator.wire import JSONObject
from flowspec.errors import Diagnostic, SpecInvalid

Api = Literal["realtime", "responses", "speech"]
InputKind = Literal["text", "audio", "tool_output"]

_RULE_KEYS = {"name", "when", "times", "say", "call", "fail", "drop", "stall_ms", "after_chunks"}
_WHEN_KEYS = {"contains", "regex", "api", "turn", "input", "instructions", "event"}
Event = Literal["response", "session.update"]
_FAIL_KEYS = {"type", "code", "message", "param", "status", "stage", "shape"}


@dataclass(frozen=True, slots=True)
class ToolCall:
    name: str
    arguments: JSONObject


@dataclass(frozen=True, slots=True)
class Failure:
    """An OpenAI-shaped error to report. `shape` picks the SSE `error` event layout."""

    type: str = "server_error"
    code: str | None = "server_error"
    message: str = "The server had an error while processing your request."
    param: str | None = None
    status: int = 500
    stage: Literal["before", "stream"] = "before"
    shape: Literal["flat", "nested"] = "nested"


@dataclass(frozen=True, slots=True)
class Turn:
    """What a rule is matched against: the input of one response."""

    api: Api
    number: int
    text: str
    kind: InputKind
    instructions: str = ""
    event: Event = "response"


@dataclass(frozen=True, slots=True)
class Rule:
    index: int
    name: str | None = None
    contains: str | None = None
    regex: re.Pattern[str] | None = None
    api: Api | None = None
    turn: int | None = None
    input: InputKind | None = None
    instructions: str | None = None
    event: Event = "response"
    times: int | None = None
    say: str | None = None
    calls: tuple[ToolCall, ...] = ()
    fail: Failure | None = None
    drop: bool = False
    stall_ms: int = 0
    after_chunks: int = 0

    def matches(self, turn: Turn) -> bool:
        return (
            (self.contains is None or self.contains.lower() in turn.text.lower())
            and (self.regex is None or self.regex.search(turn.text) is not None)
            and (self.api is None or self.api == turn.api)
            and (self.turn is None or self.turn == turn.number)
            and (self.input is None or self.input == turn.kind)
            and (self.instructions is None
                 or self.instructions.lower() in turn.instructions.lower())
            and self.event == turn.event
        )


@dataclass(slots=True)
class Script:
    """Parsed rules plus the counters that `times` and `audio_transcripts` consume."""

    rules: tuple[Rule, ...] = ()
    audio_transcripts: tuple[str, ...] = ()
    _fired: dict[int, int] = field(default_factory=dict)
    _heard: int = 0

    def match(self, turn: Turn) -> Rule | None:
        """The first rule that matches `turn` and still has uses left; counts the use. Speech
        requests are matched only by rules that name their api."""
        for rule in self.rules:
            if turn.api == "speech" and rule.api != "speech":
                continue
            used = self._fired.get(rule.index, 0)
            if rule.times is not None and used >= rule.times:
                continue
            if rule.matches(turn):
                self._fired[rule.index] = used + 1
                return rule
        return None

    def next_transcript(self) -> str | None:
        """What the next audio turn said, if the script says so."""
        if self._heard >= len(self.audio_transcripts):
            return None
        self._heard += 1
        return self.audio_transcripts[self._heard - 1]


def load_script(path: str | Path) -> Script:
    """Read a script file. Raises `SpecInvalid` with located diagnostics when it is wrong."""
    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise SpecInvalid(
            [Diagnostic(code="script.unreadable", message=f"Cannot read the script: {exc}.",
                        source=source)]
        ) from exc
    return parse_script(text, source=source)


def parse_script(text: str, *, source: str = "<script>") -> Script:
    """Parse script text (YAML or JSON). Raises `SpecInvalid` listing every problem found."""
    try:
        data = YAML(typ="rt").load(text)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark
        raise SpecInvalid(
            [
                Diagnostic(
                    code="script.syntax",
                    message=f"The script is not valid YAML or JSON: {exc.problem}.",
                    source=source,
                    line=mark.line + 1 if mark else None,
                    column=mark.column + 1 if mark else None,
                )
            ]
        ) from exc
    checker = _Checker(source, data)
    script = checker.script()
    if checker.diagnostics:
        raise SpecInvalid(checker.diagnostics)
    return script


Locate = Callable[[list[str | int]], tuple[int | None, int | None]]
"""Line and column (1-based) of a pointer into a script, as parts."""


def check_script(data: Any, *, source: str, locate: Locate, at: str = "") -> Script:
    """A script given as plain data inside another document (a test file's `model:`): every
    problem raised at once as `SpecInvalid`, located by `locate` and pointed below `at`."""
    checker = _Checker(source, data, locate=locate, prefix=at)
    script = checker.script()
    if checker.diagnostics:
        raise SpecInvalid(checker.diagnostics)
    return script


class _Checker:
    def __init__(self, source: str, root: Any, *, locate: Locate | None = None,
                 prefix: str = "") -> None:
        self.source = source
        self.root = root
        self.locate = locate or (lambda pointer: _locate(root, pointer))
        self.prefix = prefix
        self.diagnostics: list[Diagnostic] = []

    def fail(self, pointer: list[str | int], message: str, code: str = "script.invalid") -> None:
        line, column = self.locate(pointer)
        self.diagnostics.append(
            Diagnostic(
                code=code,
                message=message,
                source=self.source,
                line=line,
                column=column,
                pointer=self.prefix + "".join(f"/{part}" for part in pointer),
            )
        )

    def script(self) -> Script:
        root = self.root if self.root is not None else {}
        if not isinstance(root, dict):
            self.fail([], "A script must be a mapping with 'rules' and/or 'audio_transcripts'.")
            return Script()
        for key in root:
            if key not in ("rules", "audio_transcripts", "version"):
                self.fail([str(key)], f"Unknown key '{key}'.", "script.unknown_key")
        transcripts = root.get("audio_transcripts", [])
        if not isinstance(transcripts, list) or not all(isinstance(t, str) for t in transcripts):
            self.fail(["audio_transcripts"], "'audio_transcripts' must be a list of strings.")
            transcripts = []
        rules = root.get("rules", [])
        if not isinstance(rules, list):
            self.fail(["rules"], "'rules' must be a list of rules.")
            rules = []
        parsed = [self.rule(index, raw) for index, raw in enumerate(rules)]
        return Script(
            rules=tuple(rule for rule in parsed if rule is not None),
            audio_transcripts=tuple(str(t) for t in transcripts),
        )

    def rule(self, index: int, raw: Any) -> Rule | None:
        at: list[str | int] = ["rules", index]
        if not isinstance(raw, dict):
            self.fail(at, "A rule must be a mapping.")
            return None
        before = len(self.diagnostics)
        for key in raw:
            if key not in _RULE_KEYS:
                self.fail([*at, str(key)], f"Unknown rule key '{key}'.", "script.unknown_key")
        when = raw.get("when") or {}
        fields: dict[str, Any] = {"index": index}
        if not isinstance(when, dict):
            self.fail([*at, "when"], "'when' must be a mapping of conditions.")
            when = {}
        for key, value in when.items():
            where = [*at, "when", str(key)]
            if key not in _WHEN_KEYS:
                self.fail(where, f"Unknown condition '{key}'.", "script.unknown_key")
            elif key == "regex":
                try:
                    fields["regex"] = re.compile(str(value), re.IGNORECASE)
                except re.error as exc:
                    self.fail(where, f"The regex does not compile: {exc}.")
            elif key == "api" and value not in ("realtime", "responses", "speech"):
                self.fail(where, "'api' must be 'realtime', 'responses' or 'speech'.")
            elif key == "input" and value not in ("text", "audio", "tool_output"):
                self.fail(where, "'input' must be 'text', 'audio' or 'tool_output'.")
            elif key == "turn" and not _positive(value):
                self.fail(where, "'turn' must be a positive integer.")
            elif key in ("contains", "instructions") and not isinstance(value, str):
                self.fail(where, f"'{key}' must be a string.")
            elif key == "event" and value not in ("response", "session.update"):
                self.fail(where, "'event' must be 'response' or 'session.update'.")
            else:
                fields[key] = value
        for key in ("times", "stall_ms", "after_chunks"):
            if key in raw and not _positive(raw[key], allow_zero=key != "times"):
                self.fail([*at, key], f"'{key}' must be a non-negative integer.")
            elif key in raw:
                fields[key] = raw[key]
        if "name" in raw:
            fields["name"] = str(raw["name"])
        if "say" in raw:
            if isinstance(raw["say"], str):
                fields["say"] = raw["say"]
            else:
                self.fail([*at, "say"], "'say' must be a string.")
        if "call" in raw:
            fields["calls"] = tuple(self.calls([*at, "call"], raw["call"]))
        if "fail" in raw:
            fields["fail"] = self.failure([*at, "fail"], raw["fail"])
        if "drop" in raw:
            if isinstance(raw["drop"], bool):
                fields["drop"] = raw["drop"]
            else:
                self.fail([*at, "drop"], "'drop' must be true or false.")
        if raw.get("fail") and raw.get("drop"):
            self.fail(at, "A rule may either fail or drop, not both.")
        if len(self.diagnostics) > before:
            return None
        return Rule(**fields)

    def calls(self, at: list[str | int], raw: Any) -> Iterator[ToolCall]:
        items = raw if isinstance(raw, list) else [raw]
        for index, item in enumerate(items):
            where = [*at, index] if isinstance(raw, list) else at
            if not isinstance(item, dict) or not isinstance(item.get("name"), str):
                self.fail(where, "A call needs a 'name' (and optional 'arguments' mapping).")
                continue
            extra = set(item) - {"name", "arguments"}
            if extra:
                self.fail(where, f"Unknown call key '{sorted(extra)[0]}'.", "script.unknown_key")
            arguments = item.get("arguments", {})
            if not isinstance(arguments, dict):
                self.fail([*where, "arguments"], "'arguments' must be a mapping.")
                continue
            yield ToolCall(item["name"], _plain(arguments))

    def failure(self, at: list[str | int], raw: Any) -> Failure | None:
        if raw is True:
            return Failure()
        if not isinstance(raw, dict):
            self.fail(at, "'fail' must be true or a mapping of error fields.")
            return None
        fields: dict[str, Any] = {}
        for key, value in raw.items():
            where = [*at, str(key)]
            if key not in _FAIL_KEYS:
                self.fail(where, f"Unknown error key '{key}'.", "script.unknown_key")
            elif key == "status" and not (isinstance(value, int) and 400 <= value <= 599):
                self.fail(where, "'status' must be an HTTP error status (400-599).")
            elif key == "stage" and value not in ("before", "stream"):
                self.fail(where, "'stage' must be 'before' or 'stream'.")
            elif key == "shape" and value not in ("flat", "nested"):
                self.fail(where, "'shape' must be 'flat' or 'nested'.")
            else:
                fields[key] = value
        if "type" in fields and "status" not in fields and fields["type"] != "server_error":
            fields["status"] = 400
        return Failure(**fields)


def _positive(value: Any, *, allow_zero: bool = False) -> bool:
    minimum = 0 if allow_zero else 1
    return isinstance(value, int) and not isinstance(value, bool) and value >= minimum


def _plain(value: Any) -> Any:
    """Turn ruamel's commented containers into plain JSON values."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _locate(root: Any, pointer: list[str | int]) -> tuple[int | None, int | None]:
    """Line and column (1-based) of the deepest part of `pointer` that ruamel can place."""
    node = root
    found: tuple[int | None, int | None] = (None, None)
    for part in pointer:
        lc = getattr(node, "lc", None)
        try:
            if isinstance(node, dict) and part in node:
                if lc is not None:
                    line, column = lc.key(part)
                    found = (line + 1, column + 1)
                node = node[part]
            elif isinstance(node, list) and isinstance(part, int) and part < len(node):
                if lc is not None:
                    line, column = lc.item(part)
                    found = (line + 1, column + 1)
                node = node[part]
            else:
                break
        except (KeyError, IndexError, TypeError):
            break
    return found
