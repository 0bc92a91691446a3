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

from flowspec.errors import Diagnostic, SpecInvalid

Assignment = tuple[str, Any]


class PatchFailed(SpecInvalid):
    """A patch that cannot apply to the document (a bad pointer, a failed `test`, bad JSON)."""


def _failure(message: str, pointer: str = "", source: str = "<patch>") -> PatchFailed:
    return PatchFailed([Diagnostic(code="patch.invalid", message=message, source=source,
                                   pointer=pointer)])


def parse_value(text: str) -> Any:
    """A `--set` value: JSON or a YAML flow scalar/collection (`false`, `{type: server_vad}`,
    `cedar`); anything that does not parse is the string itself."""
    from ruamel.yaml import YAML
    from ruamel.yaml.error import YAMLError

    try:
        return json.loads(text)
    except ValueError:
        pass
    try:
        value = YAML(typ="safe").load(text)
    except YAMLError:
        return text
    return text if value is None and text.strip() not in ("null", "~") else value


def apply_json_patch(data: Any, operations: Any) -> Any:
    """RFC 6902, atomically: the new document, or PatchFailed and `data` untouched."""
    import jsonpatch
    import jsonpointer

    if not isinstance(operations, list):
        raise _failure("A JSON Patch is a list of operations.")
    try:
        return jsonpatch.JsonPatch(operations).apply(data, in_place=False)
    except jsonpatch.JsonPatchTestFailed as exc:
        raise _failure(f"A `test` operation failed: {exc}") from None
    except (jsonpatch.JsonPatchException, jsonpointer.JsonPointerException) as exc:
        raise _failure(f"The patch does not apply: {exc}") from None
    except (TypeError, KeyError, ValueError, IndexError) as exc:
        raise _failure(f"The patch is malformed: {exc}") from None


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


def parse_assignment(text: str) -> Assignment:
    pointer, sep, value = text.partition("=")
    if not sep or not pointer.startswith("/"):
        raise _failure(f"Expected /json/pointer=value, got {text!r}.")
    return pointer, parse_value(value)


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
