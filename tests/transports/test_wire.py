"""Parsing client messages: kinds, bad JSON, and the bounds on nesting and number length."""

from __future__ import annotations

import pytest

from flowspec import limits
from flowspec.transports.wire import ClientMessageError, parse_object


def test_a_message_parses_to_its_kind_and_body() -> None:
    assert parse_object('{"type": "text", "text": "hi"}') == (
        "text", {"type": "text", "text": "hi"})
    assert parse_object('{"event": "stop"}', key="event") == ("stop", {"event": "stop"})


@pytest.mark.parametrize(("text", "code"), [
    ("not json", "invalid_json"),
    ("[1]", "invalid_message"),
    ('{"type": 1}', "invalid_message"),
    ('{"type": "playback", "played_ms": ' + "9" * 400 + "}", "message_too_complex"),
    ('{"type": "playback", "played_ms": 1e999}', "message_too_complex"),
    ('{"type": "playback", "played_ms": NaN}', "message_too_complex"),
    ("[" * 30000, "message_too_complex"),
    ('{"type": "x", "v": ' + "[" * (limits.CLIENT_MAX_DEPTH + 1)
     + "]" * (limits.CLIENT_MAX_DEPTH + 1) + "}", "message_too_complex"),
])
def test_unusable_messages_raise_a_client_error_with_a_code(text: str, code: str) -> None:
    with pytest.raises(ClientMessageError) as caught:
        parse_object(text)
    assert caught.value.code == code
    assert str(caught.value).endswith(".")


def test_messages_at_the_bounds_are_accepted() -> None:
    depth = limits.CLIENT_MAX_DEPTH - 1  # the message object itself is one level
    number = "9" * limits.CLIENT_MAX_NUMBER_DIGITS
    kind, body = parse_object('{"type": "x", "v": ' + "[" * depth + number + "]" * depth + "}")
    assert kind == "x"
    assert limits.depth(body) == limits.CLIENT_MAX_DEPTH
