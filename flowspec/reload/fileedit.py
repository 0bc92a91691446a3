"""Edit a spec's text the way a person would: change the values, keep the comments, key order,
quoting and flow/block layout of everything else (ruamel.yaml round trip).

Every edit goes through plain data (the same JSON the schema sees): a patch is applied to it,
then the round-trip tree is brought in line with the result node by node, so an untouched value
keeps its exact text.
"""

from __future__ import annotations

import io
import json
from collections.abc import Sequence
from typing import Any

from flowspec import limits
from flowspec.errors import Diagnostic, SpecInvalid

Assignment = tuple[str, Any]


class PatchFailed(SpecInvalid):
    """A patch that cannot apply to the document (a bad pointer, a failed `test`, bad JSON)."""


def _failure(message: str, pointer: str = "", source: str = "<patch>") -> PatchFailed:
    return PatchFailed([Diagnostic(code="patch.invalid", message=message, source=source,
                                   pointer=pointer)])


def parse_value(text: str, types: set[str] | None = None) -> Any:
    """A `--set` value for a place whose JSON types are `types` (None: unknown). Where a string
    fits, the text is the string, exactly as given (`You are #1. Be brief` stays whole); for
    other places it is JSON or a YAML flow value (`false`, `1.5`, `{type: server_vad}`).
    Raises PatchFailed when it is neither, or when a `#` would cut it short."""
    from ruamel.yaml import YAML
    from ruamel.yaml.error import YAMLError

    if types is not None and "string" in types:
        return text
    try:
        return limits.loads(text)
    except ValueError:
        pass
    if types is None:
        return text  # an unknown place: take it as written
    if "#" in text:
        raise _failure(f"{text!r} is not JSON, and as YAML its `#` would start a comment; give "
                       "JSON with --set-json")
    try:
        value = YAML(typ="safe").load(text)
    except YAMLError:
        value = None
    if value is None or isinstance(value, str):
        raise _failure(f"{text!r} is not a {' or '.join(sorted(types))}; give JSON with "
                       "--set-json")
    return value


def apply_json_patch(data: Any, operations: Any) -> Any:
    """RFC 6902, atomically: the new document, or PatchFailed and `data` untouched."""
    import jsonpatch
    import jsonpointer

    if not isinstance(operations, list):
        raise _failure("A JSON Patch is a list of operations.")
    for operation in operations:
        missing = _missing_parent(data, operation)
        if missing:
            raise _failure(missing, str(operation.get("path", "")))
    try:
        return jsonpatch.JsonPatch(operations).apply(data, in_place=False)
    except jsonpatch.JsonPatchTestFailed as exc:
        raise _failure(f"A `test` operation failed: {exc}") from None
    except (jsonpatch.JsonPatchException, jsonpointer.JsonPointerException) as exc:
        raise _failure(f"The patch does not apply: {exc}") from None
    except (TypeError, KeyError, ValueError, IndexError) as exc:
        raise _failure(f"The patch is malformed: {exc}") from None


def _missing_parent(data: Any, operation: Any) -> str | None:
    """Why an `add` cannot reach its place (`/nodes/nope/x`: there is no `nope`), said with
    what is there, instead of the library's message holding the whole document."""
    if not isinstance(operation, dict) or operation.get("op") != "add" or \
            not isinstance(operation.get("path"), str):
        return None
    tokens = [t.replace("~1", "/").replace("~0", "~") for t in operation["path"].split("/")[1:]]
    node, walked = data, ""
    for token in tokens[:-1]:
        walked += "/" + token.replace("~", "~0").replace("/", "~1")
        if isinstance(node, dict) and token in node:
            node = node[token]
        elif isinstance(node, list) and token.isdigit() and int(token) < len(node):
            node = node[int(token)]
        else:
            here = sorted(map(str, node)) if isinstance(node, dict) else []
            listed = f" (it has: {', '.join(here[:12])})" if here else ""
            return f"{walked} does not exist{listed}"
    return None


def apply_merge_patch(data: Any, patch: Any) -> Any:
    """RFC 7396: objects merge recursively, `null` removes a member, anything else replaces."""
    if not isinstance(patch, dict):
        return patch
    result = dict(data) if isinstance(data, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = apply_merge_patch(result.get(key), value)
    return result


def assignments_patch(assignments: Sequence[Assignment]) -> list[dict[str, Any]]:
    """`--set /pointer=value` as JSON Patch `add` operations (which replace existing members)."""
    return [{"op": "add", "path": pointer, "value": value} for pointer, value in assignments]


def split_assignment(text: str) -> tuple[str, str]:
    """`/json/pointer=value` as `(pointer, value text)`."""
    pointer, sep, value = text.partition("=")
    if not sep or not pointer.startswith("/"):
        raise _failure(f"Expected /json/pointer=value, got {text!r}.")
    return pointer, value


def parse_assignment(text: str, types: set[str] | None = None) -> Assignment:
    """`--set /pointer=value`, the value read as `parse_value` reads it for `types`."""
    pointer, value = split_assignment(text)
    try:
        return pointer, parse_value(value, types)
    except PatchFailed as exc:
        raise _failure(exc.diagnostics[0].message, pointer) from None


def parse_json_assignment(text: str) -> Assignment:
    """`--set-json /pointer=JSON`."""
    pointer, value = split_assignment(text)
    try:
        return pointer, limits.loads(value)
    except ValueError as exc:
        raise _failure(f"{value!r} is not JSON: {exc}", pointer) from None


def rewrite(text: str, new_data: Any, *, source: str = "<spec>") -> str:
    """`text` changed to hold `new_data`, with comments and layout kept where values did not
    change. JSON documents are written back as indented JSON."""
    from ruamel.yaml import YAML

    if source.endswith(".json") or text.lstrip().startswith("{"):
        return json.dumps(new_data, indent=2, ensure_ascii=False) + "\n"
    yaml = YAML(typ="rt")
    yaml.preserve_quotes = True
    yaml.width = 4096  # never re-wrap long lines the author wrote on one line
    mapping, offset = _indents(text)
    yaml.indent(mapping=mapping, sequence=mapping + offset, offset=offset)
    tree = yaml.load(text)
    tree = _sync(tree, new_data)
    out = io.StringIO()
    yaml.dump(tree, out)
    return out.getvalue()


def _indents(text: str) -> tuple[int, int]:
    """(mapping indent, dash offset) as the author wrote them: ruamel cannot read them back,
    and dumping with its defaults would re-indent every block sequence."""
    mapping, offset = 0, 0
    previous = ""
    for line in text.splitlines():
        stripped = line.lstrip()
        if not stripped or stripped.startswith("#"):
            continue
        indent = len(line) - len(stripped)
        before = len(previous) - len(previous.lstrip())
        if previous.rstrip().endswith(":") and not previous.lstrip().startswith("- "):
            if stripped.startswith("- "):
                offset = offset or indent - before
            elif indent > before:
                mapping = mapping or indent - before
        previous = line.split(" #", 1)[0]
    return mapping or 2, max(offset, 0)


def _sync(node: Any, new: Any) -> Any:
    from ruamel.yaml.comments import CommentedMap, CommentedSeq

    if isinstance(node, CommentedMap) and isinstance(new, dict):
        for key in [k for k in node if k not in new]:
            del node[key]
        for key, value in new.items():
            if key in node:
                node[key] = _sync(node[key], value)
            else:
                node[key] = value
        return node
    if isinstance(node, CommentedSeq) and isinstance(new, list):
        for index, value in enumerate(new[:len(node)]):
            node[index] = _sync(node[index], value)
        del node[len(new):]
        node.extend(new[len(node):])
        return node
    if type(node) is type(new) or (_plain(node) == new and _kind(node) == _kind(new)):
        return node if _plain(node) == new else new
    return new


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    return type(value).__name__ if not isinstance(value, str) else "str"


def _plain(value: Any) -> Any:
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, str):
        return str(value)
    return value
