"""What differs between the two transcription-session wires, as the node uses it: the
`TranscriptionDialect` Protocol, satisfied by the `protocol` (GA) and `protocol_beta` modules as
they stand. The server events the node reads are named alike in both."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from flowspec.nodes.openai_transcribe import protocol, protocol_beta
from flowspec.spec.models.speech import TranscribeSettingsSpec


class TranscriptionDialect(Protocol):
    @property
    def NAME(self) -> str: ...

    @property
    def HEADERS(self) -> Mapping[str, str]:
        """Headers the connection request carries besides authorization."""
        ...

    @property
    def UPDATED(self) -> str:
        """The server's answer to a session update."""
        ...

    @property
    def WAITS_FOR_CREATED(self) -> bool:
        """True: the server speaks first (`session.created`) and the update answers it."""
        ...

    def session(self, settings: TranscribeSettingsSpec,
                extra: Mapping[str, Any]) -> dict[str, Any]:
        """The whole session the settings ask for."""
        ...

    def update(self, session: Mapping[str, Any]) -> dict[str, Any]:
        """The client event that sends `session`."""
        ...

    def changes(self, before: Mapping[str, Any], after: Mapping[str, Any]) -> dict[str, Any]:
        """The partial session of a live change; empty when nothing changed."""
        ...


GA: TranscriptionDialect = protocol
BETA: TranscriptionDialect = protocol_beta
