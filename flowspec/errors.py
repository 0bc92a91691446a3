"""The error tree of flowspec, and the located diagnostics that spec-time errors carry.

    FlowspecError
    ├── SpecInvalid          a spec (or a patch of one) failed; carries every Diagnostic at once
    ├── UsageError           the command line or an API call was used wrongly
    └── NodeError            a node failed at run time (carries node_id)
        ├── TransportError       a socket or HTTP exchange failed
        │   └── AccessRefused    the provider refused the key, its permissions or quota: no retry
        ├── RemoteProtocolError  the provider said something invalid or reported an error
        └── NodeTimeout          a node did not answer in time

This module imports nothing from flowspec, so every layer may raise these.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class Severity(StrEnum):
    ERROR = "error"
    WARNING = "warning"
    INFO = "info"


@dataclass(frozen=True, slots=True, kw_only=True)
class Diagnostic:
    """One located finding about a spec: `file:line:col /pointer: message`.

    `code` is stable and machine-readable (tests and `--format json` use it); `message` is a full
    sentence for people; `hint` is an optional did-you-mean or fix suggestion.
    """

    code: str
    message: str
    severity: Severity = Severity.ERROR
    source: str = "<spec>"
    line: int | None = None
    column: int | None = None
    pointer: str = ""
    hint: str | None = None
    consequences: tuple[str, ...] = ()
    """What follows from this finding (about other places), folded under it rather than
    reported on its own."""

    def location(self) -> str:
        where = self.source
        if self.line is not None:
            where += f":{self.line}"
            if self.column is not None:
                where += f":{self.column}"
        return where

    def __str__(self) -> str:
        pointer = self.pointer or "/"
        tail = f" ({self.hint})" if self.hint else ""
        level = "" if self.severity is Severity.ERROR else f"{self.severity.value}: "
        text = f"{self.location()} {pointer}: {level}{self.message}{tail} [{self.code}]"
        return "".join([text, *(f"\n    so {c}" for c in self.consequences)])

    def to_json(self) -> dict[str, Any]:
        return {
            "severity": self.severity.value,
            "code": self.code,
            "message": self.message,
            "source": self.source,
            "line": self.line,
            "column": self.column,
            "pointer": self.pointer,
            "hint": self.hint,
            **({"consequences": list(self.consequences)} if self.consequences else {}),
        }


class FlowspecError(Exception):
    """Root of every error flowspec raises on purpose."""


class UsageError(FlowspecError):
    """A command or API was called with arguments that cannot work (exit code 2 in the CLI)."""


@dataclass(eq=False)
class SpecInvalid(FlowspecError):
    """A spec failed to load, validate or compile. Holds all findings, warnings included."""

    diagnostics: list[Diagnostic] = field(default_factory=list)

    def __post_init__(self) -> None:
        super().__init__(self.__str__())

    @property
    def errors(self) -> list[Diagnostic]:
        return [d for d in self.diagnostics if d.severity is Severity.ERROR]

    def __str__(self) -> str:
        return "\n".join(str(d) for d in self.diagnostics) or "invalid spec"


class NodeError(FlowspecError):
    """A node failed while a session ran. `fatal` ends the session (e.g. a model connection
    that cannot be restored); otherwise the session goes on and the failure is reported."""

    def __init__(self, node_id: str, message: str, *, fatal: bool = False) -> None:
        super().__init__(f"node {node_id!r}: {message}")
        self.node_id = node_id
        self.fatal = fatal


class TransportError(NodeError):
    """A socket or HTTP exchange of a node failed."""


class AccessRefused(TransportError):
    """The provider refused the credentials, what they may do or their quota (HTTP 401 or 403,
    or an error such as `invalid_api_key` or `insufficient_quota`, at connect or mid-session):
    trying again cannot help, so nodes do not retry it and the call ends. The message carries
    the provider's own reason; `code` is its error code when it gave one."""

    def __init__(self, node_id: str, message: str, *, fatal: bool = False,
                 code: str | None = None) -> None:
        super().__init__(node_id, message, fatal=fatal)
        self.code = code


class RemoteProtocolError(NodeError):
    """The provider sent something invalid, or reported an error the node cannot absorb."""


class NodeTimeout(NodeError):
    """A node's peer did not answer within its time limit."""
