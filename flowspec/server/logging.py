"""Log set-up for `flowspec serve`: human-readable lines, or one JSON object per line.

JSON lines carry `time`, `level`, `logger`, `message` and any `extra=` fields (`session_id`,
`spec`, `node_id`, ...), so a log pipeline can group a call's lines without parsing text. Either
way each line passes through `REDACTOR` last: no value that came from the environment for a
served spec is ever written out (it shows as `${NAME}`).
"""

from __future__ import annotations

import datetime
import json
import logging
from typing import Any, Literal

from flowspec.redact import Redactor

LogFormat = Literal["text", "json"]

_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message",
                                                                               "asctime"}


REDACTOR = Redactor()
"""What every line `configure_logging` sets up is masked with; `serve` teaches it the values."""


class RedactingFormatter(logging.Formatter):
    def __init__(self, inner: logging.Formatter, *, tracebacks: bool = True) -> None:
        super().__init__()
        self.inner = inner
        self.tracebacks = tracebacks

    def format(self, record: logging.LogRecord) -> str:
        if not self.tracebacks and record.exc_info and _expected(record.exc_info[1]):
            # An error flowspec raised on purpose says all in its message; a traceback of it
            # reads as a crash. Anything else keeps its traceback: that one is a bug.
            record = logging.makeLogRecord({**record.__dict__, "exc_info": None,
                                            "exc_text": None})
        return REDACTOR.text(self.inner.format(record))


def _expected(exc: BaseException | None) -> bool:
    from flowspec.errors import FlowspecError

    return isinstance(exc, FlowspecError)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.datetime.fromtimestamp(record.created, datetime.UTC)
            .isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                entry[key] = value if isinstance(value, str | int | float | bool) else str(value)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def configure_cli_logging(command: str) -> None:
    """Logs of a one-session command (`flowspec chat`, `run`): warnings and errors on stderr,
    each line starting `flowspec COMMAND:`, without tracebacks of expected failures."""
    handler = logging.StreamHandler()
    handler.setFormatter(RedactingFormatter(logging.Formatter(
        f"flowspec {command}: %(message)s"), tracebacks=False))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.WARNING)


def configure_logging(fmt: LogFormat = "text", level: int = logging.INFO) -> None:
    """Send flowspec's (and aiohttp's) logs to stderr in `fmt`."""
    handler = logging.StreamHandler()
    inner = JsonFormatter() if fmt == "json" else logging.Formatter(
        "%(asctime)s %(levelname)s %(name)s: %(message)s")
    handler.setFormatter(RedactingFormatter(inner))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    # It reports every batch of file events; the spec watcher says what matters itself.
    logging.getLogger("watchfiles").setLevel(logging.WARNING)
