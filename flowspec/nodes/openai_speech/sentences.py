"""Sentence boundaries in streamed text: where a speech node may send what it has so far.

Text arrives as a model's deltas. A sentence ends at `.`, `!`, `?` or `…` (with any closing
quotes or brackets) followed by whitespace, or at a line break; the whitespace must have arrived,
so "3.5" and "e.g.," never split in the middle. A piece that grows past `max_chars` without a
boundary is cut at its last space (or hard, with none): one request never exceeds the API's
limit, and a run-on reply still starts speaking.
"""

from __future__ import annotations

import re

MAX_CHARS = 600
"""Longest piece sent as one request when no sentence ends (the API takes up to 4096)."""
_BOUNDARY = re.compile(r"[.!?…]+[\"'”’)\]]*(?=\s)|(?<=\S)(?=\n)")


class SentenceSplitter:
    """Feeds on text deltas and hands out whole sentences, each with the whitespace before it
    (the pieces join back to the text exactly). `pending` is what waits for its boundary."""

    def __init__(self, max_chars: int = MAX_CHARS) -> None:
        self.max_chars = max_chars
        self._text = ""

    @property
    def pending(self) -> str:
        return self._text

    def feed(self, delta: str) -> list[str]:
        """The sentences `delta` completes, in order (often none)."""
        # Only the tail can hold a new boundary: search from just before the delta.
        start = max(0, len(self._text) - 4)
        self._text += delta
        pieces: list[str] = []
        while True:
            match = _BOUNDARY.search(self._text, start)
            if match is None:
                break
            cut = match.end()
            pieces.append(self._text[:cut])
            self._text, start = self._text[cut:], 0
        while len(self._text) > self.max_chars:
            space = self._text.rfind(" ", 0, self.max_chars)
            cut = space if space > 0 else self.max_chars
            pieces.append(self._text[:cut])
            self._text = self._text[cut:]
        return pieces

    def flush(self) -> str | None:
        """Whatever is left (the reply ended), or None when only whitespace is."""
        text, self._text = self._text, ""
        return text if text.strip() else None

    def reset(self) -> None:
        self._text = ""
