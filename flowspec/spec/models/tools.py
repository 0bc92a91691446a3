"""Tool nodes: functions the model can call (`tool.python`, `tool.http`)."""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from flowspec.spec.models.base import Mutability, NodeSpec, spec_field

LIVE = Mutability.LIVE
NEXT = Mutability.NEXT_SESSION
STRUCT = Mutability.STRUCTURAL

TOOL_NAME_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"


class ToolNodeSpec(NodeSpec):
    kind: ClassVar[str] = "tool"

    name: str | None = spec_field(
        description="Function name the model sees. Defaults to the node id.",
        mutability=NEXT,
        pattern=TOOL_NAME_PATTERN,
    )
    description: str = spec_field(
        ...,
        description="What the tool does, for the model: when to call it and what it returns.",
        mutability=LIVE,
        examples=["Current weather for a city."],
    )
    parameters: dict[str, Any] = spec_field(
        default_factory=lambda: {"type": "object", "properties": {}},
        description="JSON Schema of the arguments. Arguments from the model are validated "
        "against it before the call.",
        mutability=LIVE,
        examples=[{"type": "object", "properties": {"location": {"type": "string"}},
                   "required": ["location"]}],
    )
    strict: bool = spec_field(
        False,
        description="Responses API: ask the model to follow `parameters` exactly (`strict`).",
        mutability=LIVE,
    )
    timeout_s: float = spec_field(
        10.0,
        description="Seconds before a call is abandoned and the model gets an error result.",
        mutability=NEXT,
        gt=0,
    )
    cancel_on_interruption: bool = spec_field(
        True,
        description="Cancel a running call when the user interrupts.",
        mutability=NEXT,
    )

    def function_name(self, node_id: str) -> str:
        return self.name or node_id


class PythonToolSpec(ToolNodeSpec):
    """Calls an importable Python function (sync in a thread, async awaited)."""

    type: Literal["tool.python"] = spec_field(
        ..., description="A Python function tool.", mutability=STRUCT
    )
    handler: str = spec_field(
        ...,
        description="`package.module:function` to call with the validated arguments.",
        mutability=NEXT,
        privileged=True,
        pattern=r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*:[A-Za-z_][A-Za-z0-9_.]*$",
        examples=["flowspec.examples.weather:get_weather"],
    )


class HttpToolSpec(ToolNodeSpec):
    """POSTs the arguments as JSON to a URL; a 2xx body is the result."""

    type: Literal["tool.http"] = spec_field(..., description="An HTTP tool.", mutability=STRUCT)
    url: str = spec_field(
        ...,
        description="http(s) URL called with the arguments.",
        mutability=NEXT,
        privileged=True,
        pattern=r"^https?://",
        examples=["https://api.example.com/weather"],
    )
    method: Literal["POST", "PUT", "PATCH", "GET"] = spec_field(
        "POST",
        description="HTTP method; `GET` sends the arguments as query parameters.",
        mutability=NEXT,
    )
    headers: dict[str, str] = spec_field(
        default_factory=dict,
        description="Request headers (values may use `${VAR}`; never printed).",
        mutability=NEXT,
        privileged=True,
        secret=True,
        examples=[{"Authorization": "Bearer ${WEATHER_TOKEN}"}],
    )
    allow_private_network: bool = spec_field(
        False,
        description="Allow `url` to reach loopback, link-local (such as 169.254.169.254), "
        "private and other non-public addresses. Off by default: a tool the model can call "
        "should not reach the server itself or the network behind it. Checked when the spec is "
        "validated and again at each call, on the addresses the host name resolves to.",
        mutability=NEXT,
        privileged=True,
    )
