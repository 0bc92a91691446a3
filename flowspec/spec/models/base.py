"""Shared building blocks of the spec models: strict bases, mutability classes, the field helper.

Every field of every model is declared through `spec_field`, so the JSON Schema carries, for each
one, a description, the provider's default (for documentation: an omitted setting is never sent),
examples, `x-flowspec-mutability`, and a deprecation message when the field has a replacement.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field

JSONValue = Any
"""A JSON value as loaded from the spec (kept as `Any` for pydantic; documented as JSON)."""

_UNSET: Any = object()


class Mutability(StrEnum):
    """When a change to a field takes effect on a running bot."""

    LIVE = "live"
    """Applied to running sessions (a realtime node sends a minimal `session.update`)."""
    UNTIL_FIRST_AUDIO = "until_first_audio"
    """Applied to sessions that have not produced audio yet, and to new sessions."""
    NEXT_SESSION = "next_session"
    """Connection-level: new sessions only."""
    STRUCTURAL = "structural"
    """Graph shape: new sessions only; live sessions keep the graph they started with."""


MUTABILITY_TEXT = {
    Mutability.LIVE: "**Live**: a change applies to running sessions.",
    Mutability.UNTIL_FIRST_AUDIO: (
        "**Until first audio**: a change applies to sessions that have not produced audio yet, "
        "and to new sessions."
    ),
    Mutability.NEXT_SESSION: "**Next session**: a change applies to new sessions only.",
    Mutability.STRUCTURAL: (
        "**Structural**: a change applies to new sessions only; live ones keep their graph."
    ),
}

PRIVILEGED_TEXT = (
    "**Privileged**: it names code, a file or a URL, so the admin API changes it only on a "
    "server started with `--admin-allow-code` (editing the file always can)."
)


def spec_field(
    default: Any = None,
    *,
    description: str,
    mutability: Mutability,
    provider_default: Any = _UNSET,
    examples: list[Any] | None = None,
    deprecated: str | None = None,
    secret: bool = False,
    privileged: bool = False,
    enum_descriptions: list[str] | None = None,
    custom_pattern: str | None = None,
    default_factory: Any = None,
    alias: str | None = None,
    **constraints: Any,
) -> Any:
    """A model field with everything the schema and the hot-reload planner need.

    `provider_default` documents what the provider uses when the field is omitted (the field itself
    defaults to None and is then not sent); `deprecated` is the sentence telling what to write
    instead, reported as a warning by `flowspec validate`. `privileged` marks a code-bearing field
    (it names a module, a file or a URL): the admin API may change it only on a server started
    with `--admin-allow-code`. `examples` with `enum_descriptions`
    and a `custom_pattern` make an open enum: editors complete the documented values (with their
    descriptions) and also accept any string matching `custom_pattern`.
    """
    extra: dict[str, Any] = {"x-flowspec-mutability": mutability.value}
    if provider_default is not _UNSET:
        extra["default"] = provider_default
        extra["x-flowspec-not-given"] = True
    if deprecated:
        extra["deprecationMessage"] = deprecated
        extra["x-flowspec-deprecated"] = deprecated
    if secret:
        extra["x-flowspec-secret"] = True
        extra["writeOnly"] = True
    if privileged:
        extra["x-flowspec-privileged"] = True
    if enum_descriptions:
        extra["enumDescriptions"] = enum_descriptions
    if custom_pattern:
        extra["x-flowspec-custom-pattern"] = custom_pattern
    kwargs: dict[str, Any] = dict(
        description=description, examples=examples, json_schema_extra=extra, **constraints
    )
    if alias is not None:
        kwargs["alias"] = alias
    if default_factory is not None:
        return Field(default_factory=default_factory, **kwargs)
    return Field(default, **kwargs)


class StrictModel(BaseModel):
    """A spec object: unknown keys are errors, values are immutable once loaded."""

    model_config = ConfigDict(
        extra="forbid", frozen=True, populate_by_name=True, use_enum_values=True,
        # A model is built when first used: a process that validates one spec builds the
        # few node kinds it holds, not every one of the language.
        defer_build=True,
    )


class NodeSpec(StrictModel):
    """Base of every node model. `type` selects the node kind (the schema's discriminator)."""

    type: str
    kind: ClassVar[str] = "node"
    """Broad family used by the graph checks: `transport`, `model`, `tool`, `audio`, `log`."""

    def deprecated_fields(self) -> list[tuple[str, str]]:
        """(field name, replacement sentence) for every deprecated field this node sets."""
        found: list[tuple[str, str]] = []
        for name in self.model_fields_set:
            info = type(self).model_fields[name]
            extra = info.json_schema_extra
            if isinstance(extra, dict) and isinstance(extra.get("x-flowspec-deprecated"), str):
                found.append((name, str(extra["x-flowspec-deprecated"])))
        return found


def mutability_of(model: type[BaseModel], name: str) -> Mutability:
    extra = model.model_fields[name].json_schema_extra
    if isinstance(extra, dict) and "x-flowspec-mutability" in extra:
        return Mutability(str(extra["x-flowspec-mutability"]))
    return Mutability.STRUCTURAL
