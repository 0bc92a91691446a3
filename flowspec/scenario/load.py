"""Reading a test file: every problem at once, each located `file:line:col /pointer`, like a spec.

The file is read with the spec loader (positions, and the same bounds on size, nesting, aliases
and numbers), checked against its JSON Schema, then against the models, each scenario's embedded
script with the emulator's own checker, and the spec it names is compiled. A test file that does
not load runs nothing.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from flowspec.errors import Diagnostic, SpecInvalid
from flowspec.scenario.model import SCHEMA_ID, Scenario, ScenarioFile
from flowspec.spec.compiled import CompiledGraph
from flowspec.spec.load import Document, join_pointer, parse

SUFFIX = ".test.yaml"


@dataclass(slots=True)
class LoadedScenario:
    scenario: Scenario
    index: int
    script: Any = None
    """The emulator `Script` of its `model:` (None without one)."""


@dataclass(slots=True)
class LoadedTestFile:
    path: Path
    document: Document
    graph: CompiledGraph
    spec_text: str
    scenarios: list[LoadedScenario] = field(default_factory=list)

    def locate(self, pointer: str) -> tuple[int | None, int | None]:
        position = self.document.position(pointer)
        return position if position is not None else (None, None)


def load_test_file(path: str | Path) -> LoadedTestFile:
    """Raises SpecInvalid (every located problem), or OSError when the file cannot be read."""
    from pydantic import ValidationError

    from flowspec.emulator.script import check_script
    from flowspec.spec.compile import compile_file

    source = Path(path)
    document = parse(source.read_text(encoding="utf-8"), str(path))
    problems = list(schema_diagnostics(document))
    if problems:
        raise SpecInvalid(problems)
    try:
        model = ScenarioFile.model_validate(document.data)
    except ValidationError as exc:
        raise SpecInvalid(list(_pydantic_diagnostics(document, exc))) from None
    loaded: list[LoadedScenario] = []
    for index, scenario in enumerate(model.scenarios):
        script = None
        if scenario.model is not None:
            at = f"/scenarios/{index}/model"
            try:
                script = check_script(scenario.model, source=str(path), at=at,
                                      locate=_locator(document, at))
            except SpecInvalid as exc:
                problems.extend(exc.diagnostics)
        for turn_index, turn in enumerate(scenario.turns):
            if turn.audio is not None and not (source.parent / turn.audio).is_file():
                problems.append(document.diagnostic(
                    "test.missing-file", f"no such file: {turn.audio} (relative to this file)",
                    f"/scenarios/{index}/turns/{turn_index}/audio"))
        if scenario.replay is not None and not (source.parent / scenario.replay).is_file():
            problems.append(document.diagnostic(
                "test.missing-file", f"no such recording: {scenario.replay}",
                f"/scenarios/{index}/replay"))
        loaded.append(LoadedScenario(scenario, index, script))
    spec_path = source.parent / model.spec
    try:
        spec_text = spec_path.read_text(encoding="utf-8")
        report = compile_file(spec_path)
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        problems.append(document.diagnostic("test.missing-spec", f"cannot read the spec "
                                            f"{model.spec}: {reason}", "/spec"))
        raise SpecInvalid(problems) from None
    if not report.ok or report.graph is None:
        problems.append(document.diagnostic("test.invalid-spec", f"the spec {model.spec} is not "
                                            "valid (`flowspec validate` it)", "/spec"))
        problems.extend(report.errors)
    if problems:
        raise SpecInvalid(problems)
    assert report.graph is not None
    return LoadedTestFile(source, document, report.graph, spec_text, loaded)


def _locator(document: Document, at: str) -> Any:
    def locate(parts: list[str | int]) -> tuple[int | None, int | None]:
        pointer = at
        for part in parts:
            pointer = join_pointer(pointer, part)
        position = document.position(pointer, key=True)
        return position if position is not None else (None, None)

    return locate


# -- the schema ---------------------------------------------------------------------------------


@cache
def scenario_schema() -> dict[str, Any]:
    """The test file's JSON Schema (draft-07), shaped for editors like the spec's."""
    raw = ScenarioFile.model_json_schema()
    definitions = {name: _clean(value) for name, value in raw.pop("$defs", {}).items()}
    top: dict[str, Any] = {"$schema": "http://json-schema.org/draft-07/schema#", "$id": SCHEMA_ID,
                           **_clean(raw), "definitions": dict(sorted(definitions.items()))}
    top["defaultSnippets"] = [{"label": "new flowspec test file", "body": {
        "flowspec_test": 1, "spec": "${1:bot.yaml}", "scenarios": [
            {"name": "${2:a first call}", "turns": [{"say": "${3:Hello}", "expect": [
                {"bot_said": {"contains": "${4:}"}}]}]}]}}]
    return top


def scenario_schema_text() -> str:
    return json.dumps(scenario_schema(), indent=2, ensure_ascii=False) + "\n"


def _clean(node: Any) -> Any:
    """pydantic's schema as editors want it: `#/definitions/`, no generated titles, no `null`
    branches (an omitted field is how a test file says "not given"), `markdownDescription`."""
    if isinstance(node, list):
        return [_clean(item) for item in node]
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key == "title":
            continue
        if key == "$ref":
            out[key] = str(value).replace("#/$defs/", "#/definitions/")
        elif key == "properties":
            out[key] = {name: _clean(sub) for name, sub in value.items()}
        else:
            out[key] = _clean(value)
    branches = out.get("anyOf")
    if isinstance(branches, list):
        kept = [b for b in branches if b != {"type": "null"}]
        if len(kept) == 1:
            del out["anyOf"]
            out = {**kept[0], **out}
        else:
            out["anyOf"] = kept
    if out.get("default", 0) is None:
        del out["default"]
    if "description" in out:
        out["markdownDescription"] = out["description"]
    if "$ref" in out and len(out) > 1:
        out["allOf"] = [{"$ref": out.pop("$ref")}]
    return out


@cache
def _validator() -> Any:
    from jsonschema import Draft7Validator

    return Draft7Validator(scenario_schema())


def schema_diagnostics(document: Document) -> Iterator[Diagnostic]:
    """Every schema error of a test file, located; sorted by position."""
    from flowspec.spec.validate import did_you_mean

    found: dict[tuple[str, str], Diagnostic] = {}
    for error in _validator().iter_errors(document.data):
        pointer = ""
        for token in error.absolute_path:
            pointer = join_pointer(pointer, token)
        if error.validator == "additionalProperties":
            allowed = list(error.schema.get("properties") or {})
            for key in sorted(set(error.instance) - set(allowed)):
                hint = did_you_mean(key, allowed)
                diagnostic = document.diagnostic(
                    "test.unknown-key", f"unknown key {key!r}", join_pointer(pointer, key),
                    key=True, hint=hint or f"allowed: {', '.join(allowed)}")
                found.setdefault((diagnostic.pointer, diagnostic.code), diagnostic)
            continue
        message = _message(error)
        diagnostic = document.diagnostic("test.schema", message, pointer)
        found.setdefault((diagnostic.pointer, message), diagnostic)
    yield from sorted(found.values(), key=lambda d: (d.line or 0, d.column or 0, d.pointer))


def _message(error: Any) -> str:
    if error.validator in ("anyOf", "oneOf") and error.context:
        best = min(error.context, key=lambda e: len(list(e.absolute_schema_path)))
        return str(best.message)
    if error.validator == "required":
        return f"{error.message.split(' is a required')[0]} is required"
    return str(error.message)


def _pydantic_diagnostics(document: Document, exc: Any) -> Iterator[Diagnostic]:
    for error in exc.errors(include_url=False):
        pointer, node = "", document.data
        for token in error["loc"]:
            if isinstance(node, dict) and token in node:
                node = node[token]
            elif isinstance(node, list) and isinstance(token, int) and token < len(node):
                node = node[token]
            else:
                continue
            pointer = join_pointer(pointer, token)
        message = str(error["msg"]).removeprefix("Value error, ")
        yield document.diagnostic("test.invalid", message, pointer, key=True)


def find_test_files(paths: list[str]) -> list[Path]:
    """The test files named or found (`*.test.yaml`) under the directories named."""
    found: list[Path] = []
    for name in paths:
        path = Path(name)
        if path.is_dir():
            found.extend(sorted(path.rglob(f"*{SUFFIX}")))
        else:
            found.append(path)
    return found
