"""The node family of `text.redact`, declared exactly as flowspec declares its built-in ones
(`flowspec.families.builtin`); `pyproject.toml` names `FAMILIES` under `flowspec.nodes`.

This module is imported whenever flowspec reads a spec, so it imports no more than the family
needs: the node itself is named by path and imported only when a session starts one.
"""

from __future__ import annotations

from collections.abc import Iterator

from flowspec.errors import Diagnostic, Severity
from flowspec.families import NodeFamily
from flowspec.spec.load import Document
from flowspec.spec.ports import PortSpec
from flowspec_redact.spec import RedactSpec

TEXT = frozenset({"text", "transcript"})


def redact_ports(spec: RedactSpec) -> list[PortSpec]:
    return [PortSpec("in", "in", TEXT, required=True), PortSpec("out", "out", TEXT)]


def redact_rules(doc: Document, base: str, spec: RedactSpec) -> Iterator[Diagnostic]:
    if spec.mask.isdigit():
        yield doc.diagnostic("redact.digit-mask", f"mask {spec.mask!r} is a digit: masked "
                             "numbers would still read as numbers", f"{base}/mask",
                             severity=Severity.WARNING, hint='use a symbol such as "#"')


FAMILIES = [
    NodeFamily(
        name="text.redact",
        models=(RedactSpec,),
        ports=redact_ports,
        rules=redact_rules,
        implementation="flowspec_redact.node:RedactNode",
        snippets=({"type": "text.redact", "mask": "#", "keep_last": 0},),
    ),
]
