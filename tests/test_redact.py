"""Environment values out of replies, plans and logs."""

from __future__ import annotations

import io
import json
import logging

import pytest

from flowspec.redact import Redactor, referenced_names
from flowspec.server import logging as server_logging


def test_the_names_a_spec_references() -> None:
    spec = {"nodes": {"a": {"api_key": "${KEY}", "url": "https://x/${env:HOST:-h}/${PATH_}"},
                      "b": ["$${NOT_A_REF}", "plain"]}}
    assert referenced_names(spec) == {"KEY", "HOST", "PATH_", "NOT_A_REF"}


def test_values_are_replaced_by_their_reference_in_text_and_data() -> None:
    redactor = Redactor.of([{"x": "${GREETING} and ${SHORT} and ${UNSET}"}],
                           {"GREETING": "hello-world", "SHORT": "en", "OPENAI_API_KEY": "sk-123",
                            "OTHER": "not-referenced"})
    assert redactor.text("say hello-world; key sk-123; en; not-referenced") == \
        "say ${GREETING}; key ${OPENAI_API_KEY}; en; not-referenced"
    data = {"plan": [{"instructions": "hello-world!"}], "hello-world": 1, "n": 5}
    assert redactor.data(data) == {"plan": [{"instructions": "${GREETING}!"}],
                                   "${GREETING}": 1, "n": 5}


def test_a_longer_value_holding_a_shorter_one_is_replaced_whole() -> None:
    redactor = Redactor({"abcd": "${A}", "abcdefgh": "${B}"})
    assert redactor.text("abcdefgh abcd") == "${B} ${A}"


def test_every_log_line_is_redacted(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(server_logging, "REDACTOR", Redactor({"sk-live-secret": "${KEY}"}))
    root = logging.getLogger()
    monkeypatch.setattr(root, "handlers", list(root.handlers))
    monkeypatch.setattr(root, "level", root.level)
    for fmt in ("text", "json"):
        stream = io.StringIO()
        server_logging.configure_logging(fmt)
        handler = logging.getLogger().handlers[0]
        assert isinstance(handler, logging.StreamHandler)
        handler.setStream(stream)
        try:
            raise ValueError("bad key sk-live-secret")
        except ValueError:
            logging.getLogger("flowspec.test").exception("sending sk-live-secret failed",
                                                         extra={"detail": "sk-live-secret"})
        out = stream.getvalue()
        assert "sk-live-secret" not in out and out.count("${KEY}") >= 3, out
        if fmt == "json":
            assert json.loads(out)["detail"] == "${KEY}"
