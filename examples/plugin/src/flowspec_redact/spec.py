"""The spec model of `text.redact`: what a spec may write on such a node, and the schema of it."""

from __future__ import annotations

from typing import ClassVar, Literal

from flowspec.spec.models.base import Mutability, NodeSpec, spec_field

NEXT = Mutability.NEXT_SESSION


class RedactSpec(NodeSpec):
    """Masks the digits of numbers (card, phone, account numbers) in the text and transcripts
    passing through; every other frame passes unchanged."""

    type: Literal["text.redact"] = spec_field(
        ..., description="Digit masker for text and transcripts.",
        mutability=Mutability.STRUCTURAL,
    )
    kind: ClassVar[str] = "text"
    mask: str = spec_field(
        "#",
        description="The character each masked digit becomes.",
        mutability=NEXT,
        min_length=1,
        max_length=1,
        examples=["#", "*", "•"],
    )
    keep_last: int = spec_field(
        0,
        description="Digits left visible at the end of each number (4 shows a card number's "
        "last four). Spaces, dashes and dots between digits belong to the number.",
        mutability=NEXT,
        ge=0,
        le=32,
    )
