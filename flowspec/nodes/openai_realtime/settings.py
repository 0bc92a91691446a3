"""A Realtime node's live settings: the session payload it sends, and settings deltas turned
into the smallest `session.update` that applies them, under the provider's rules (the model is
fixed for a connection; the voice is fixed once audio was produced; reasoning only for models
that can use it).

`reasoning` set for a model that cannot use it is left out of every `session.update`, and the node
says so once, as a log warning on `flowspec.nodes.openai_realtime`, not on the bus: validation
already reports it (`provider.reasoning-unsupported`), and nothing failed at the provider."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from flowspec.nodes.openai_realtime import protocol, protocol_beta
from flowspec.nodes.tool_defs import tool_definitions
from flowspec.runtime.bus import BusEvent, SettingsApplied, SettingsRejected
from flowspec.spec.models.realtime import RealtimeNodeSpec, RealtimeSettingsSpec
from flowspec.spec.models.realtime_beta import RealtimeBetaNodeSpec, RealtimeBetaSettingsSpec
from flowspec.spec.models.tools import ToolNodeSpec

log = logging.getLogger("flowspec.nodes.openai_realtime")

REASONING_MODELS = ("gpt-realtime-2",)


@dataclass(slots=True)
class SettingsUpdate:
    """What applying a delta asks of the node: a partial session to send (empty: nothing) and
    bus events to publish."""

    session: dict[str, Any] = field(default_factory=dict)
    events: list[BusEvent] = field(default_factory=list)


class LiveSettings:
    def __init__(self, spec: RealtimeNodeSpec | RealtimeBetaNodeSpec,
                 tool_specs: Mapping[str, ToolNodeSpec], *, node_id: str) -> None:
        self._spec = spec
        self._node_id = node_id
        self.current: RealtimeSettingsSpec | RealtimeBetaSettingsSpec = spec.effective_settings()
        self._tools = tool_definitions(list(tool_specs), tool_specs, "realtime")
        self._warned: set[str] = set()

    @property
    def model(self) -> str:
        return self.current.model

    def session_payload(self) -> dict[str, Any]:
        """The full `session` of a `session.update` for the current settings."""
        settings = self.current
        extra = self._spec.extra
        if settings.system_instruction is not None and \
                settings.session_properties.instructions is not None:
            self._warn("instructions", "both settings.system_instruction and "
                       "session_properties.instructions are set; system_instruction wins")
        if isinstance(settings, RealtimeBetaSettingsSpec):
            return protocol_beta.session_payload(settings, tools=self._tools, extra=extra)
        if settings.session_properties.reasoning is not None and \
                not settings.model.startswith(REASONING_MODELS):
            self._warn("reasoning", f"model {settings.model!r} cannot use `reasoning`; it is not "
                       "sent (reasoning realtime models: gpt-realtime-2 and later)")
        return protocol.session_payload(settings, tools=self._tools, extra=extra)

    def update(self, delta: Mapping[str, Any], version: int, session_id: str, *,
               audio_sent: bool) -> SettingsUpdate:
        """Apply a settings delta (`model`, `system_instruction`, `session_properties`, as in
        the spec). A delta the provider would refuse is rejected whole, and nothing changes."""
        def rejected(message: str) -> SettingsUpdate:
            log.warning("%s: settings version %d rejected: %s", self._node_id, version, message)
            return SettingsUpdate(events=[SettingsRejected(
                session_id=session_id, node_id=self._node_id, version=version, message=message)])

        model = delta.get("model")
        if model is not None and model != self.current.model:
            return rejected("The model cannot change within a session (it is part of the "
                            "connection); new sessions will use it.")
        data = protocol.deep_merge(self.current.model_dump(exclude_unset=True, mode="json"),
                                   dict(delta))
        try:
            new = type(self.current).model_validate(data)
        except ValidationError as exc:
            return rejected(f"The settings are not valid: {exc.errors()[0]['msg']}.")
        before = self.session_payload()
        previous, self.current = self.current, new
        after = self.session_payload()
        if audio_sent and _voice(before) != _voice(after):
            self.current = previous
            return rejected("The voice cannot change once the model has produced audio in "
                            "this session.")
        changed = {key: value for key, value in after.items() if before.get(key) != value}
        return SettingsUpdate(session=changed, events=[SettingsApplied(
            session_id=session_id, node_id=self._node_id, changed=tuple(sorted(changed)),
            version=version)])

    def _warn(self, key: str, message: str) -> None:
        if key not in self._warned:
            self._warned.add(key)
            log.warning("%s: %s.", self._node_id, message)


def _voice(session: dict[str, Any]) -> Any:
    audio = session.get("audio")
    if isinstance(audio, dict):
        return (audio.get("output") or {}).get("voice")
    return session.get("voice")
