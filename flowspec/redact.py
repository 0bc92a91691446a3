"""Values that came from the environment, kept out of every reply, plan and log line.

A spec reads secrets with `${NAME}`; the compiled graph holds the values, and anything built from
it (a plan's `session.update`, a provider's echo, an error text) may carry one. A `Redactor`
knows the values of the variables a spec references and writes `${NAME}` wherever one appears.
It works on text and on JSON-shaped data (strings inside are rewritten, the shape is kept).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable, Mapping
from typing import Any, TypeVar, cast

T = TypeVar("T")

MIN_LENGTH = 4
"""Shorter values (`1`, `en`, `true`) are too common to hide without garbling the output, and
too short to be secrets."""
_NAME = re.compile(r"\$\{(?:env:)?([A-Za-z_][A-Za-z0-9_]*)")
ALWAYS = ("OPENAI_API_KEY", "FLOWSPEC_ADMIN_TOKEN")
"""Variables masked whether or not a spec names them: flowspec reads them itself."""


def referenced_names(data: Any) -> set[str]:
    """The names of the environment variables `data` (a spec as written) references."""
    names: set[str] = set()
    stack = [data]
    while stack:
        value = stack.pop()
        if isinstance(value, dict):
            stack.extend(value.values())
        elif isinstance(value, list):
            stack.extend(value)
        elif isinstance(value, str) and "${" in value:
            names.update(_NAME.findall(value))
    return names


class Redactor:
    """Replaces each known secret value with `${NAME}`. Thread-safe to extend and use."""

    def __init__(self, values: Mapping[str, str] | None = None) -> None:
        self._values: dict[str, str] = {}
        self._pattern: re.Pattern[str] | None = None
        self._lock = threading.Lock()
        if values:
            self.add(values)

    @classmethod
    def of(cls, documents: Iterable[Any], env: Mapping[str, str]) -> Redactor:
        """A redactor for the variables `documents` reference, read from `env`."""
        redactor = cls()
        redactor.learn(documents, env)
        return redactor

    def learn(self, documents: Iterable[Any], env: Mapping[str, str]) -> None:
        names = set(ALWAYS)
        for data in documents:
            names |= referenced_names(data)
        self.add({env[name]: f"${{{name}}}" for name in names if env.get(name)})

    def add(self, values: Mapping[str, str]) -> None:
        """Mask each key of `values` as its value (`{"sk-...": "${OPENAI_API_KEY}"}`)."""
        fresh = {k: v for k, v in values.items() if len(k) >= MIN_LENGTH and k not in self._values}
        if not fresh:
            return
        with self._lock:
            self._values.update(fresh)
            # Longest first, so a value holding another is replaced whole.
            alternatives = sorted(self._values, key=len, reverse=True)
            self._pattern = re.compile("|".join(re.escape(v) for v in alternatives))

    def text(self, text: str) -> str:
        pattern = self._pattern
        if pattern is None or not text:
            return text
        return pattern.sub(lambda m: self._values[m.group(0)], text)

    def data(self, value: T) -> T:
        """`value` (JSON-shaped) with every string redacted; the same shape back."""
        if self._pattern is None:
            return value
        return cast(T, self._data(value))

    def _data(self, value: Any) -> Any:
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {self.text(str(k)): self._data(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self._data(v) for v in value]
        return value
