"""A node family is complete when declared: a missing or malformed piece is refused, named."""

from __future__ import annotations

from typing import Any, ClassVar, Literal

import pytest

from flowspec.families import NO_PORTS, NO_RULES, EmulatorEndpoints, FamilyError, NodeFamily
from flowspec.families.builtin import BUILTIN_FAMILIES
from flowspec.families.registry import FamilyRegistry, Origin, builtin_families
from flowspec.spec.models.base import Mutability, NodeSpec, spec_field
from flowspec.spec.ports import PortSpec


class EchoSpec(NodeSpec):
    """A test node."""

    type: Literal["test.family_echo"] = spec_field(..., description="Echo.",
                                                   mutability=Mutability.STRUCTURAL)
    kind: ClassVar[str] = "test"


class OtherSpec(NodeSpec):
    type: Literal["test.family_other"] = spec_field(..., description="Other.",
                                                    mutability=Mutability.STRUCTURAL)


def echo_ports(spec: EchoSpec) -> list[PortSpec]:
    return [PortSpec("in", "in", frozenset({"text"})), PortSpec("out", "out", frozenset({"text"}))]


COMPLETE: dict[str, Any] = dict(
    name="test.family_echo",
    models=(EchoSpec,),
    ports=echo_ports,
    rules=NO_RULES,
    implementation="flowspec.testing:PassthroughNode",
    snippets=({"type": "test.family_echo"},),
)


def declare(**changes: Any) -> NodeFamily[Any]:
    pieces = {k: v for k, v in (COMPLETE | changes).items() if v is not None}
    return NodeFamily(**pieces)


@pytest.mark.parametrize(("piece", "named"), [
    ("ports", "no ports"),
    ("rules", "no rules"),
    ("implementation", "no implementation"),
    ("snippets", "no snippets"),
    ("models", "no models"),
])
def test_a_family_missing_a_piece_is_refused_naming_the_family_and_the_piece(
        piece: str, named: str) -> None:
    with pytest.raises(FamilyError, match=rf"'test\.family_echo' cannot be registered: .*{named}"):
        declare(**{piece: None})


def test_every_missing_piece_is_named_at_once() -> None:
    with pytest.raises(FamilyError) as caught:
        NodeFamily(name="bare")
    message = str(caught.value)
    assert "'bare'" in message
    for piece in ("models", "ports", "rules", "implementation", "snippets"):
        assert f"no {piece}" in message


def test_no_rules_and_no_ports_are_explicit_declarations() -> None:
    family = declare(ports=NO_PORTS, rules=NO_RULES)
    assert family.ports(EchoSpec(type="test.family_echo")) == []


@pytest.mark.parametrize(("changes", "problem"), [
    ({"models": (PortSpec,)}, "is not a NodeSpec with `type: Literal"),
    ({"models": (EchoSpec, EchoSpec)}, "one type twice"),
    ({"ports": "in, out"}, "ports is not callable"),
    ({"implementation": "flowspec.testing.PassthroughNode"}, "not 'module:attribute'"),
    ({"implementation": {"test.other": "flowspec.testing:PassthroughNode"}},
     "implementation mapping covers"),
    ({"snippets": ({"type": "test.other"},)}, "snippets are for types"),
    ({"snippets": ()}, "snippets are for types"),
    ({"live": "settings"}, "live path has no `applies` and `action` methods"),
    ({"emulator": EmulatorEndpoints({"base_url": "{ws}/realtime"})},
     "emulator endpoints name fields model 'EchoSpec' lacks: api_key, base_url"),
])
def test_a_malformed_piece_is_refused(changes: dict[str, Any], problem: str) -> None:
    with pytest.raises(FamilyError, match="'test.family_echo' cannot be registered") as caught:
        declare(**changes)
    assert problem in str(caught.value)


def test_a_family_of_several_types_maps_each_to_its_implementation_and_snippet() -> None:
    family = declare(models=(EchoSpec, OtherSpec),
                     implementation={"test.family_echo": "flowspec.testing:PassthroughNode",
                                     "test.family_other": "flowspec.testing:RecorderNode"},
                     snippets=({"type": "test.family_other"}, {"type": "test.family_echo"}))
    assert family.types == ("test.family_echo", "test.family_other")
    assert family.implementation_of("test.family_other") == "flowspec.testing:RecorderNode"
    snippet = family.snippet("test.family_echo")
    snippet["changed"] = True
    assert family.snippet("test.family_echo") == {"type": "test.family_echo"}


def test_a_type_is_declared_once_in_a_registry() -> None:
    registry = FamilyRegistry()
    registry.register(*BUILTIN_FAMILIES)
    registry.register(declare(), origin=Origin("flowspec-echo", "1.0"))
    assert registry.origin("test.family_echo") == Origin("flowspec-echo", "1.0")
    with pytest.raises(FamilyError, match=r"'again' declares type 'test\.family_echo', which "
                       r"family 'test\.family_echo' of flowspec-echo 1\.0 already declares"):
        registry.register(declare(name="again"))
    with pytest.raises(FamilyError, match="'one' and 'two' both declare"):
        FamilyRegistry().register(declare(name="one"), declare(name="two"))


def test_registration_is_all_or_nothing() -> None:
    registry = FamilyRegistry()
    registry.register(declare())
    other = declare(name="other", models=(OtherSpec,), snippets=({"type": "test.family_other"},))
    with pytest.raises(FamilyError):
        registry.register(other, declare(name="again"))
    assert "test.family_other" not in registry


def test_an_undeclared_type_is_an_error_naming_the_known_ones() -> None:
    with pytest.raises(FamilyError, match=r"No node family declares type 'openai\.realtim' "
                       r"\(known: openai\.realtime, "):
        builtin_families().family("openai.realtim")


def test_the_builtin_families_declare_the_builtin_types_in_schema_order() -> None:
    assert builtin_families().types == (
        "openai.realtime", "openai.realtime_beta", "openai.responses", "openai.transcribe",
        "openai.speech", "transport.websocket", "transport.twilio", "transport.text",
        "transport.console", "transport.wav", "tool.python", "tool.http", "events.webhook",
        "audio.convert", "audio.record", "log.transcript")
    live = {t for t in builtin_families().types if builtin_families().family(t).live}
    assert live == {"openai.realtime", "openai.realtime_beta", "openai.responses",
                    "openai.transcribe", "openai.speech", "tool.python", "tool.http"}
