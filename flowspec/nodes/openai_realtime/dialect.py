"""What differs between the Realtime wires, as the node uses it: the `Dialect` Protocol.

The node speaks one vocabulary, GA event names; a dialect maps its wire names onto it and builds
the client events whose shapes differ. Each dialect is a module (`protocol` for GA,
`protocol_beta` for beta) that satisfies the Protocol as it stands: `GA` and `BETA` are those
modules checked against it, so every dialect call the node makes is typed.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from flowspec.audio import Encoding
from flowspec.nodes.openai_realtime import protocol, protocol_beta


class Dialect(Protocol):
    """A Realtime wire dialect. The constants are properties so that module constants (and
    narrower types, like a dict of headers) satisfy them."""

    @property
    def NAME(self) -> str:
        """`ga` or `beta`."""
        ...

    @property
    def HEADERS(self) -> Mapping[str, str]:
        """Headers the connection request carries besides authorization."""
        ...

    @property
    def ASSISTANT_TEXT_PART(self) -> str:
        """The content part type of assistant text when the history re-seeds a connection."""
        ...

    @property
    def CALLS_ON_ARGUMENTS_DONE(self) -> bool:
        """True: a function call runs once its arguments are done; False: at `response.done`."""
        ...

    def canonical(self, wire_type: str) -> str:
        """The GA name of a server event type."""
        ...

    def audio_format(self, session: dict[str, Any], direction: str) -> tuple[Encoding, int]:
        """(encoding, sample rate) of the echoed session's `input` or `output` audio."""
        ...

    def turn_detection(self, session: dict[str, Any]) -> dict[str, Any] | None:
        """The session's turn detection; None in manual turn mode."""
        ...

    def audio_output(self, session: dict[str, Any]) -> bool: ...

    def response_create(self, session: dict[str, Any]) -> dict[str, Any]:
        """A `response.create` asking for the session's output modalities."""
        ...

    def settings_session(self, session: dict[str, Any]) -> dict[str, Any]:
        """The `session` of a later, partial `session.update`."""
        ...


GA: Dialect = protocol
BETA: Dialect = protocol_beta
