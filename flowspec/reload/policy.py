"""What a document arriving through the admin API may not do, whoever holds the token.

The admin token lets its holder change how the bot behaves, not run code on the server or read
its environment. So an admin change is refused (HTTP 403, every reason located) when it:
- sets a privileged field (`x-flowspec-privileged`: a `tool.python` handler, a URL, a file path,
  `allow_private_network`), unless the server was started with `--admin-allow-code`; removing
  one is allowed;
- adds a `${NAME}` reference the spec did not already have at that place: a reference moved into
  an instruction would send the variable's value to the model and back in replies.
Edits of the spec file are not checked: whoever writes the file is trusted with both.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from flowspec.errors import Diagnostic
from flowspec.reload.diff import Change, split_pointer
from flowspec.reload.store import Candidate
from flowspec.spec.load import join_pointer

_REFERENCE = re.compile(r"\$\{[^}]*\}?")


@dataclass(frozen=True, slots=True)
class AdminPolicy:
    allow_code: bool = False

    def refusals(self, current: Any, candidate: Candidate) -> list[Diagnostic]:
        """Why the admin API may not make `candidate` (a change of `current`, the document as
        written) the spec; empty when it may."""
        found: list[Diagnostic] = []
        for change in candidate.changes:
            if change.privileged and not self.allow_code:
                found.append(candidate.locate(
                    "admin.privileged", "this sets code, a file or a URL, which the admin API "
                    "may change only on a server started with --admin-allow-code (or edit the "
                    "spec file)", change.pointer))
            for pointer, reference in _added_references(current, change):
                found.append(candidate.locate(
                    "admin.env-reference", f"the admin API may not add the environment "
                    f"reference {reference} (write it into the spec file instead); environment "
                    "values never come out of the server", pointer))
        return found


def _added_references(current: Any, change: Change) -> Iterator[tuple[str, str]]:
    """`(pointer, reference)` for each `${...}` in what `change` sets that the current document
    does not hold at the same place."""
    if change.op == "remove":
        return
    for pointer, text in _strings(change.new, change.pointer):
        if "${" not in text:
            continue
        before = _at(current, pointer)
        had = set(_REFERENCE.findall(before)) if isinstance(before, str) else set()
        for reference in _REFERENCE.findall(text.replace("$$", "")):
            if reference not in had:
                yield pointer, reference


def _strings(value: Any, pointer: str) -> Iterator[tuple[str, str]]:
    stack: list[tuple[Any, str]] = [(value, pointer)]
    while stack:
        item, here = stack.pop()
        if isinstance(item, dict):
            stack.extend((v, join_pointer(here, str(k))) for k, v in item.items())
        elif isinstance(item, list):
            stack.extend((v, join_pointer(here, i)) for i, v in enumerate(item))
        elif isinstance(item, str):
            yield here, item


def _at(data: Any, pointer: str) -> Any:
    for token in split_pointer(pointer):
        if isinstance(data, dict):
            data = data.get(token)
        elif isinstance(data, list) and token.isdigit() and int(token) < len(data):
            data = data[int(token)]
        else:
            return None
    return data
