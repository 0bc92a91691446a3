"""Schema validation of a loaded document: every error at once, located, with did-you-mean hints.

jsonschema reports a failed `oneOf`/`anyOf` as one opaque error. Node kinds and the other unions of
the spec are discriminated by a `type` const, so the branch the author meant is picked here and its
own errors are reported instead ("unknown key 'voise' (did you mean 'voice'?)"), which is what
`flowspec validate` and hot-reload rejections show.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Iterable, Iterator
from functools import cache
from typing import Any

from flowspec.errors import Diagnostic
from flowspec.spec.load import Document, join_pointer
from flowspec.spec.models.flow import PATH_PATTERN, STATE_NAME_PATTERN

# Fields that moved between the Realtime dialects: a key from the other dialect gets a precise hint.
GA_FOR_BETA = {
    "modalities": "output_modalities",
    "voice": "audio.output.voice",
    "input_audio_format": "audio.input.format",
    "output_audio_format": "audio.output.format",
    "input_audio_transcription": "audio.input.transcription",
    "input_audio_noise_reduction": "audio.input.noise_reduction",
    "turn_detection": "audio.input.turn_detection",
    "speed": "audio.output.speed",
    "max_response_output_tokens": "max_output_tokens",
    "temperature": None,
}
BETA_FOR_GA = {
    "output_modalities": "modalities",
    "audio": "the flat fields (voice, input_audio_format, turn_detection, …)",
    "max_output_tokens": "max_response_output_tokens",
    "reasoning": None,
    "truncation": None,
    "prompt": None,
    "include": None,
    "parallel_tool_calls": None,
}


def did_you_mean(word: str, choices: Iterable[str]) -> str | None:
    options = [c for c in choices if isinstance(c, str)]
    close = difflib.get_close_matches(word, options, n=1, cutoff=0.6)
    if not close:
        lowered = {c.lower(): c for c in options}
        if word.lower() in lowered:
            close = [lowered[word.lower()]]
    return f"did you mean {close[0]!r}?" if close else None


@cache
def _validator() -> Any:
    from jsonschema import Draft7Validator, validators

    from flowspec.spec.schema import build_schema

    one_of = Draft7Validator.VALIDATORS["oneOf"]
    schema = build_schema()
    definitions = schema.get("definitions", {})
    dispatch: dict[int, dict[str, int] | None] = {}

    def by_type(branches: list[Any]) -> dict[str, int] | None:
        """Branch index by its `type` const, when every branch of the union has its own."""
        table: dict[str, int] = {}
        for index, branch in enumerate(branches):
            if not isinstance(branch, dict):
                return None
            resolved = definitions.get(str(branch.get("$ref", "")).rsplit("/", 1)[-1], branch)
            const = resolved.get("properties", {}).get("type", {}).get("const")
            if not isinstance(const, str) or const in table:
                return None
            table[const] = index
        return table

    def discriminated(validator: Any, branches: list[Any], instance: Any,
                      schema: dict[str, Any]) -> Iterator[Any]:
        # The unions of the spec are told apart by `type`: a node is checked against its own
        # kind alone instead of all sixteen (which is what made a large spec slow), and its
        # errors are the ones the reporter would have picked out of the union's.
        key = id(branches)
        if key not in dispatch:
            dispatch[key] = by_type(branches)
        table = dispatch[key]
        kind = instance.get("type") if isinstance(instance, dict) else None
        if table is not None and isinstance(kind, str) and kind in table:
            index = table[kind]
            yield from validator.descend(instance, branches[index], schema_path=index)
            return
        yield from one_of(validator, branches, instance, schema)

    kind = validators.extend(Draft7Validator, {"oneOf": discriminated})
    return kind(schema)


@cache
def _secret_fields() -> frozenset[str]:
    """Names of fields marked secret anywhere in the schema (api_key, headers, tokens)."""
    definitions = _validator().schema["definitions"]
    return frozenset(
        name
        for definition in definitions.values()
        for name, prop in definition.get("properties", {}).items()
        if prop.get("x-flowspec-secret")
    )


def _pointer(path: Iterable[Any]) -> str:
    pointer = ""
    for token in path:
        pointer = join_pointer(pointer, token)
    return pointer


def _show(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= 40 else text[:37] + "…"


class _Reporter:
    def __init__(self, doc: Document) -> None:
        self.doc = doc

    def redacted(self, pointer: str, schema: dict[str, Any] | None = None) -> bool:
        if pointer in self.doc.interpolated:
            return True
        if schema and schema.get("x-flowspec-secret"):
            return True
        return any(token in _secret_fields() for token in pointer.split("/"))

    def value_text(self, pointer: str, value: Any, schema: dict[str, Any] | None) -> str:
        return "the value" if self.redacted(pointer, schema) else _show(value)

    def diagnostics(self, error: Any) -> Iterator[Diagnostic]:
        yield from self._flatten(error)

    def _flatten(self, error: Any) -> Iterator[Diagnostic]:
        if error.validator in ("oneOf", "anyOf") and error.context:
            branch = self._pick_branch(error)
            if branch is not None:
                for sub in branch:
                    yield from self._flatten(sub)
                return
        yield from self._describe(error)

    def _pick_branch(self, error: Any) -> list[Any] | None:
        branches: dict[int, list[Any]] = {}
        for sub in error.context:
            branches.setdefault(sub.schema_path[0], []).append(sub)
        instance = error.instance
        viable = []
        for index, subs in sorted(branches.items()):
            subschema = error.schema[error.validator][index]
            if self._root_mismatch(subs, instance, subschema):
                continue
            viable.append((len(subs), index, subs))
        if not viable:
            return None
        viable.sort(key=lambda item: (item[0], item[1]))
        return viable[0][2]

    def _root_mismatch(self, subs: list[Any], instance: Any, subschema: dict[str, Any]) -> bool:
        base = None
        for sub in subs:
            rel = list(sub.relative_path)
            if sub.validator in ("type", "const", "enum") and not rel:
                return True
            if rel == ["type"] and sub.validator in ("const", "enum"):
                return True
            if sub.validator == "required" and not rel and isinstance(instance, dict) \
                    and "type" not in instance and "type" in sub.validator_value:
                return True
            if sub.validator in ("oneOf", "anyOf") and not rel and sub.context:
                if base is None:
                    base = sub
        if base is not None:
            # A nested union (e.g. the two VAD kinds) counts as a mismatch only if all its own
            # branches mismatch at their roots.
            return self._pick_branch(base) is None
        return False

    def _describe(self, error: Any) -> Iterator[Diagnostic]:
        doc = self.doc
        pointer = _pointer(error.absolute_path)
        schema = error.schema if isinstance(error.schema, dict) else {}
        validator = error.validator
        instance = error.instance
        if validator == "additionalProperties":
            allowed = list(schema.get("properties", {}))
            for key in sorted(set(instance) - set(allowed)):
                yield self._unknown_key(pointer, key, allowed)
            return
        if validator == "required":
            missing = error.validator_value
            allowed = schema.get("properties", {})
            unknown = [key for key in instance if key not in allowed] \
                if allowed and schema.get("additionalProperties") is False else []
            for name in missing:
                # A misspelt required key is one mistake: its unknown-key finding names it.
                if name not in instance and did_you_mean(name, unknown) is None:
                    yield doc.diagnostic(
                        "schema.missing-required", f"missing required field {name!r}", pointer,
                        key=True,
                    )
            return
        if validator in ("oneOf", "anyOf") and isinstance(instance, dict) and "type" in instance:
            consts = _branch_consts(error.schema[validator])
            if consts:
                kind = instance["type"]
                noun = "node type" if pointer.count("/") == 2 and pointer.startswith("/nodes/") \
                    else "type"
                yield doc.diagnostic(
                    "schema.unknown-type" if noun == "node type" else "schema.bad-enum",
                    f"unknown {noun} {_show(kind)}; expected one of {', '.join(sorted(consts))}",
                    join_pointer(pointer, "type"),
                    hint=did_you_mean(str(kind), consts),
                )
                return
        explained = self._provider_range(pointer, validator, instance)
        if explained is not None:
            yield explained
            return
        if validator == "enum" or validator == "const":
            options = error.validator_value if validator == "enum" else [error.validator_value]
            shown = ", ".join(_show(o) for o in options)
            yield doc.diagnostic(
                "schema.bad-enum",
                f"{self.value_text(pointer, instance, schema)} is not allowed here; expected "
                f"{'one of ' if len(options) > 1 else ''}{shown}",
                pointer,
                hint=did_you_mean(str(instance), [str(o) for o in options])
                if isinstance(instance, str) else None,
            )
            return
        if validator == "type":
            expected = error.validator_value
            expected_text = " or ".join(expected) if isinstance(expected, list) else expected
            yield doc.diagnostic(
                "schema.wrong-type",
                f"expected {expected_text}, got {_json_type(instance)} "
                f"{self.value_text(pointer, instance, schema)}",
                pointer,
            )
            return
        if validator == "maxItems" and pointer.endswith("/output_modalities"):
            yield doc.diagnostic(
                "realtime.one-output-modality",
                "a GA Realtime session answers in one modality: write [audio] (audio comes with "
                "its transcript) or [text]",
                pointer,
            )
            return
        if validator == "pattern" and "propertyNames" in error.schema_path:
            yield self._pattern(join_pointer(pointer, instance), instance, schema, key=True)
            return
        if validator == "pattern":
            yield self._pattern(pointer, instance, schema)
            return
        if validator in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
            bound = {"minimum": "at least", "maximum": "at most",
                     "exclusiveMinimum": "more than", "exclusiveMaximum": "less than"}[validator]
            yield doc.diagnostic(
                "schema.out-of-range",
                f"{self.value_text(pointer, instance, schema)} is out of range: must be {bound} "
                f"{error.validator_value}",
                pointer,
            )
            return
        if validator in ("minItems", "minProperties", "minLength"):
            least = error.validator_value
            yield doc.diagnostic(
                "schema.too-short",
                "must not be empty" if least == 1 else f"must have at least {least} entries",
                pointer,
            )
            return
        if validator in ("maxItems", "maxLength", "maxProperties"):
            yield doc.diagnostic(
                "schema.too-long", f"must have at most {error.validator_value} entries", pointer
            )
            return
        if validator == "propertyNames":
            yield self._pattern(join_pointer(pointer, instance), instance, {"pattern": "id"},
                                key=True)
            return
        if validator in ("oneOf", "anyOf") and isinstance(instance, dict):
            consts = _branch_consts(error.schema[validator])
            if consts:
                yield doc.diagnostic(
                    "schema.missing-required",
                    "missing required field 'type'",
                    pointer,
                    key=True,
                    hint=f"one of {', '.join(sorted(consts))}",
                )
                return
        if validator in ("oneOf", "anyOf"):
            yield doc.diagnostic(
                "schema.no-match",
                f"{self.value_text(pointer, instance, schema)} does not match any allowed form"
                f"{_forms(error.schema[validator])}",
                pointer,
            )
            return
        yield doc.diagnostic("schema.invalid", error.message, pointer)

    def _unknown_key(self, pointer: str, key: str, allowed: list[str]) -> Diagnostic:
        child = join_pointer(pointer, key)
        node_type = self._node_type(pointer)
        in_session = pointer.endswith("/session_properties")
        if in_session and node_type == "openai.realtime" and key in GA_FOR_BETA:
            target = GA_FOR_BETA[key]
            hint = f"in GA write {target}" if target else "GA Realtime has no such setting"
            return self.doc.diagnostic(
                "realtime.beta-field-in-ga",
                f"{key!r} is a beta-dialect field; this is an openai.realtime (GA) node",
                child, key=True, hint=hint,
            )
        if in_session and node_type == "openai.realtime_beta" and key in BETA_FOR_GA:
            target = BETA_FOR_GA[key]
            hint = f"in beta write {target}" if target else "the beta dialect has no such setting"
            return self.doc.diagnostic(
                "realtime.ga-field-in-beta",
                f"{key!r} is a GA field; this is an openai.realtime_beta node",
                child, key=True, hint=hint,
            )
        return self.doc.diagnostic(
            "schema.unknown-key",
            f"unknown key {key!r}",
            child,
            key=True,
            hint=did_you_mean(key, allowed) or (
                f"allowed: {', '.join(allowed)}" if 0 < len(allowed) <= 12 else None
            ),
        )

    def _provider_range(self, pointer: str, validator: str,
                        instance: Any) -> Diagnostic | None:
        """A Realtime voice or beta temperature the API refuses, said with the reason: other
        OpenAI APIs (and pages written about them) take these values."""
        from flowspec.spec.capabilities import SPEECH_ONLY_VOICES
        from flowspec.spec.models.realtime import GA_VOICES
        from flowspec.spec.models.realtime_beta import BETA_VOICES

        node_type = self._node_type(pointer)
        if node_type not in ("openai.realtime", "openai.realtime_beta"):
            return None
        if pointer.endswith("/voice") and validator in ("enum", "pattern") and \
                instance in SPEECH_ONLY_VOICES:
            voices = GA_VOICES if node_type == "openai.realtime" else BETA_VOICES
            return self.doc.diagnostic(
                "realtime.speech-voice",
                f"{_show(instance)} is a text-to-speech voice (the speech API's, as an "
                f"openai.speech node uses), not a Realtime voice; {node_type} speaks with "
                f"{', '.join(voices)}", pointer,
                hint="custom voices: voice_<id>" if node_type == "openai.realtime"
                else None)
        if node_type == "openai.realtime_beta" and pointer.endswith("/temperature") and \
                validator in ("minimum", "maximum"):
            return self.doc.diagnostic(
                "schema.out-of-range",
                f"{_show(instance)} is out of range: the beta Realtime API refuses a temperature "
                "outside 0.6–1.2 (0–2 is the range of the Chat Completions and Responses APIs)",
                pointer, hint="the server's default is 0.8")
        return None

    def _node_type(self, pointer: str) -> str | None:
        parts = pointer.split("/")
        if len(parts) >= 3 and parts[1] == "nodes":
            node = self.doc.data.get("nodes", {}).get(parts[2].replace("~1", "/")
                                                       .replace("~0", "~"))
            if isinstance(node, dict):
                kind = node.get("type")
                return kind if isinstance(kind, str) else None
        return None

    def _pattern(self, pointer: str, instance: Any, schema: dict[str, Any], *,
                 key: bool = False) -> Diagnostic:
        shown = self.value_text(pointer, instance, schema)
        if pointer.startswith("/edges/"):
            message = f"edge {shown} is not of the form 'a -> b' or 'a.port -> b.port'"
            return self.doc.diagnostic("edge.syntax", message, pointer)
        if key and pointer.rsplit("/", 1)[0] == "/flow/states":
            return self.doc.diagnostic(
                "schema.bad-id", f"state name {shown} {_STATE_NAME}",
                pointer, key=True)
        if key and pointer.startswith("/flow/"):
            return self.doc.diagnostic(
                "schema.bad-id", f"function name {shown} may hold only letters, digits, '_' and "
                "'-' (at most 64)", pointer, key=True)
        if key:
            return self.doc.diagnostic(
                "schema.bad-id",
                f"node id {shown} may hold only letters, digits, '_' and '-', and must not start "
                "with a digit or '-'",
                pointer, key=True,
            )
        if pointer.startswith("/flow/") and schema.get("pattern") in _FLOW_FORMS:
            return self.doc.diagnostic(
                "schema.pattern", f"{shown} {_FLOW_FORMS[schema['pattern']]}", pointer)
        if pointer.endswith("/voice"):
            return self.doc.diagnostic(
                "schema.bad-enum",
                f"{shown} is not a voice; expected a built-in voice or a custom 'voice_…' id",
                pointer,
                hint=did_you_mean(str(instance), schema.get("examples", [])),
            )
        return self.doc.diagnostic(
            "schema.pattern",
            f"{shown} does not have the expected form ({schema.get('pattern')})",
            pointer,
        )


_STATE_NAME = ("may hold only letters, digits, '_' and '-', and must start with a letter or '_' "
               "(at most 64 characters)")
_FLOW_FORMS = {
    PATH_PATTERN: "is not a field of the call: write `result.<field>` (the tool's result) or "
    "`arguments.<field>` (what the model passed), e.g. result.status",
    STATE_NAME_PATTERN: f"is not a state name: a state name {_STATE_NAME}",
}


def _branch_consts(branches: list[Any]) -> list[str]:
    schema = _validator().schema
    consts: list[str] = []
    for branch in branches:
        resolved = branch
        if "$ref" in branch:
            resolved = schema["definitions"][branch["$ref"].rsplit("/", 1)[1]]
        const = resolved.get("properties", {}).get("type", {}).get("const")
        if isinstance(const, str):
            consts.append(const)
        elif "oneOf" in resolved:
            consts.extend(_branch_consts(resolved["oneOf"]))
    return consts


def _forms(branches: list[Any]) -> str:
    names = []
    for branch in branches:
        if "$ref" in branch:
            names.append(branch["$ref"].rsplit("/", 1)[1].removesuffix("Spec"))
        elif "const" in branch:
            names.append(_show(branch["const"]))
        elif "enum" in branch:
            names.extend(_show(value) for value in branch["enum"])
        elif "type" in branch:
            names.append(str(branch["type"]))
    if len(names) > 2:
        return f": expected {', '.join(names[:-1])} or {names[-1]}"
    return f": expected {' or '.join(names)}" if names else ""


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def schema_diagnostics(doc: Document) -> list[Diagnostic]:
    """Every schema error of the document, sorted by position, duplicates removed."""
    reporter = _Reporter(doc)
    found: dict[tuple[str, str, str], Diagnostic] = {}
    for error in _validator().iter_errors(doc.data):
        for diagnostic in reporter.diagnostics(error):
            found.setdefault((diagnostic.pointer, diagnostic.code, diagnostic.message), diagnostic)
    return sorted(found.values(), key=lambda d: (d.line or 0, d.column or 0, d.pointer))
