import datetime as dt

import pytest

from flowspec.conversation.variables import (
    CallFacts,
    VariableRefused,
    parse_assignments,
    resolve,
)
from flowspec.spec.models.conversation import MAX_VARIABLE_CHARS, VariableSpec

DECLARED = {
    "customer_name": VariableSpec(default="there", maxLength=20),
    "account": VariableSpec(pattern="^[0-9]{6}$"),
    "priority": VariableSpec(type="integer", default=1, minimum=1, maximum=5),
    "vip": VariableSpec(type="boolean", default=False),
    "plan": VariableSpec(enum=["basic", "pro"], default="basic"),
}
FACTS = CallFacts("s1", caller="+15550001", called="+15550002",
                  started=dt.datetime(2026, 12, 1, 9, 30, 5, 123, tzinfo=dt.UTC))


def test_values_are_read_as_their_type_with_defaults_and_builtins() -> None:
    values = resolve(DECLARED, {"account": "123456", "priority": "3", "vip": "true"}, FACTS)
    assert values == {"session_id": "s1", "now": "2026-12-01T09:30:05Z",
                      "caller": "+15550001", "called": "+15550002",
                      "customer_name": "there", "account": "123456", "priority": 3,
                      "vip": True, "plan": "basic"}


def test_json_values_are_taken_as_they_are() -> None:
    values = resolve(DECLARED, {"account": "000001", "priority": 5, "vip": False}, FACTS)
    assert values["priority"] == 5 and values["vip"] is False


@pytest.mark.parametrize(("supplied", "code", "words"), [
    ({}, "variables.missing", "'account' is required"),
    ({"account": "12"}, "variables.invalid", "does not match"),
    ({"account": "123456", "priority": "9"}, "variables.invalid", "above 5"),
    ({"account": "123456", "priority": "2.5"}, "variables.invalid", "not an integer"),
    ({"account": "123456", "priority": True}, "variables.invalid", "not an integer"),
    ({"account": "123456", "vip": "maybe"}, "variables.invalid", "not true or false"),
    ({"account": "123456", "plan": "gold"}, "variables.invalid", "not one of"),
    ({"account": "123456", "customer_name": "x" * 21}, "variables.invalid", "longer than 20"),
    ({"account": "123456", "customer_name": ["a"]}, "variables.invalid", "not a string"),
    ({"account": "123456", "nickname": "Al"}, "variables.undeclared", "not declared"),
    ({"account": "123456", "session_id": "forged"}, "variables.builtin", "built in"),
])
def test_a_bad_value_is_refused_naming_the_variable(supplied: dict[str, object], code: str,
                                                     words: str) -> None:
    with pytest.raises(VariableRefused) as caught:
        resolve(DECLARED, supplied, FACTS)
    assert caught.value.code == code
    assert words in str(caught.value)


def test_a_refusal_quotes_only_a_short_piece_of_the_value() -> None:
    with pytest.raises(VariableRefused) as caught:
        resolve(DECLARED, {"account": "9" * (MAX_VARIABLE_CHARS + 1)}, FACTS)
    assert len(str(caught.value)) < 200


def test_too_many_values_are_refused_before_any_is_read() -> None:
    with pytest.raises(VariableRefused) as caught:
        resolve(DECLARED, {f"v{i}": "x" for i in range(1000)}, FACTS)
    assert caught.value.code == "variables.too_many"


def test_var_options_are_name_value_pairs() -> None:
    assert parse_assignments(["a=1", "b = x=y", "c="]) == {"a": "1", "b": " x=y", "c": ""}
    with pytest.raises(VariableRefused, match="NAME=VALUE"):
        parse_assignments(["novalue"])
