"""Each call's variables: what the connection says, checked against what the spec declares.

Values arrive from outside the trust boundary (a page's query string, Twilio `<Parameter>`s, a
`--var`, an admin call), so they are bounded, read as their declared type and validated before
the model is contacted. A refusal names the variable and why, without echoing more than a short
piece of the value, and affects that call alone. Only declared names may be set; the built-ins
(`flowspec.spec.models.conversation.BUILTIN_VARIABLES`) are filled here and cannot be.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from flowspec.conversation.template import as_text
from flowspec.errors import FlowspecError
from flowspec.spec.models.conversation import (
    BUILTIN_VARIABLES,
    MAX_VARIABLE_CHARS,
    MAX_VARIABLES,
    VariableSpec,
)

if TYPE_CHECKING:
    from jsonschema import Draft7Validator

_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off"}


class VariableRefused(FlowspecError):
    """A call's variables break the spec's declaration. `code` is stable (`variables.missing`,
    `variables.invalid`, `variables.undeclared`, `variables.builtin`, `variables.too_many`);
    the message is safe to show the caller and to log."""

    def __init__(self, code: str, name: str | None, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.name = name


@dataclass(frozen=True, slots=True)
class CallFacts:
    """What the transport knows about a call beyond the values it was given."""

    session_id: str
    caller: str = ""
    called: str = ""
    started: dt.datetime | None = None


def resolve(declared: Mapping[str, VariableSpec], supplied: Mapping[str, Any],
            facts: CallFacts) -> dict[str, Any]:
    """The variables of one call: built-ins, then each declared variable from `supplied` (read
    as its type) or its default. Raises VariableRefused for the first problem found, in the
    order declared (so the caller can fix them one at a time, as a form does)."""
    if len(supplied) > MAX_VARIABLES:
        raise VariableRefused("variables.too_many", None,
                              f"{len(supplied)} variables given; at most {MAX_VARIABLES}.")
    for name in supplied:
        if name in BUILTIN_VARIABLES:
            raise VariableRefused("variables.builtin", name,
                                  f"variable {name!r} is built in and cannot be set.")
        if name not in declared:
            known = ", ".join(sorted(declared)) or "none"
            raise VariableRefused("variables.undeclared", _short(name),
                                  f"variable {_short(name)!r} is not declared by this bot "
                                  f"(declared: {known}).")
    started = facts.started or dt.datetime.now(dt.UTC)
    values: dict[str, Any] = {
        "session_id": facts.session_id,
        "now": started.replace(microsecond=0).isoformat().replace("+00:00", "Z"),
        "caller": facts.caller,
        "called": facts.called,
    }
    for name, spec in declared.items():
        if name in supplied:
            values[name] = _checked(name, spec, _read(name, spec, supplied[name]))
        elif spec.default is not None:
            values[name] = spec.default
        else:
            raise VariableRefused("variables.missing", name,
                                  f"variable {name!r} is required and was not given.")
    return values


def parse_assignments(items: list[str]) -> dict[str, str]:
    """`NAME=VALUE` pairs (the `--var` options) as a mapping; raises VariableRefused for an
    item with no `=` or no name."""
    out: dict[str, str] = {}
    for item in items:
        name, eq, value = item.partition("=")
        if not eq or not name.strip():
            raise VariableRefused("variables.invalid", None,
                                  f"--var {item!r} is not NAME=VALUE.")
        out[name.strip()] = value
    return out


def _read(name: str, spec: VariableSpec, raw: Any) -> Any:
    """`raw` as the declared type: text from a query string or a Twilio parameter is read as a
    number or a boolean when the variable is one; JSON values are taken as they are."""
    if isinstance(raw, str) and len(raw) > MAX_VARIABLE_CHARS:
        raise VariableRefused("variables.invalid", name,
                              f"variable {name!r} is longer than {MAX_VARIABLE_CHARS:,} "
                              "characters.")
    if not isinstance(raw, str) or spec.type == "string":
        if isinstance(raw, bool) and spec.type in ("integer", "number"):
            raise _invalid(name, raw, _not_a(spec))
        return raw
    text = raw.strip()
    if spec.type == "boolean":
        if text.lower() in _TRUE:
            return True
        if text.lower() in _FALSE:
            return False
        raise _invalid(name, raw, "not true or false")
    if len(text) > 40:
        raise _invalid(name, raw, "too long for a number")
    try:
        if spec.type == "integer":
            return int(text)
        number = float(text)
    except ValueError:
        raise _invalid(name, raw, _not_a(spec)) from None
    if not math.isfinite(number):
        raise _invalid(name, raw, "not a finite number")
    return number


def _not_a(spec: VariableSpec) -> str:
    return {"integer": "not an integer", "number": "not a number", "boolean": "not true or false"
            }.get(spec.type, "not a string")


def _checked(name: str, spec: VariableSpec, value: Any) -> Any:
    # Length first: a pattern is only run on text within the declared bound.
    if isinstance(value, str) and len(value) > spec.maxLength:
        raise _invalid(name, value, f"longer than {spec.maxLength} characters")
    if isinstance(value, (list, dict)):
        raise _invalid(name, value, f"not a {spec.type}")
    error = next(iter(_validator(json.dumps(spec.json_schema(), sort_keys=True))
                      .iter_errors(value)), None)
    if error is not None:
        raise _invalid(name, value, _reason(error.validator, spec))
    return value


def _reason(keyword: Any, spec: VariableSpec) -> str:
    return {
        "type": _not_a(spec),
        "enum": "not one of " + ", ".join(map(repr, spec.enum or [])),
        "pattern": f"does not match {spec.pattern!r}",
        "minLength": f"shorter than {spec.minLength} characters",
        "maxLength": f"longer than {spec.maxLength} characters",
        "minimum": f"below {as_text(spec.minimum)}",
        "maximum": f"above {as_text(spec.maximum)}",
    }.get(str(keyword), f"breaks its {keyword}")


def _invalid(name: str, value: Any, why: str) -> VariableRefused:
    return VariableRefused("variables.invalid", name,
                           f"variable {name!r} = {_short(value)!r} is {why}.")


def _short(value: Any) -> str:
    text = str(value)
    return text if len(text) <= 40 else text[:37] + "..."


@lru_cache(maxsize=512)
def _validator(schema: str) -> Draft7Validator:
    from jsonschema import Draft7Validator

    return Draft7Validator(json.loads(schema))
