"""What a caller on the phone hears when the bot cannot take the call: a short spoken line,
played on the Twilio stream before it closes.

A browser or chat client is told why a call could not start (`session_failed`) or why it ended
(`session.ended`). A Twilio Media Stream has no text channel: without this the caller would hear
silence, then the line going dead. So when a Twilio session cannot start, or ends because the
bot could not go on (its model cannot be reached or refuses it, a node failed fatally), the
server plays a line as μ-law 8 kHz `media` messages in 20 ms chunks followed by a `mark`, and
closes the stream once Twilio echoes the mark (the line has played), the caller hangs up, or
the line's length and a margin have passed. The server log keeps the real reason.

The built-in line is `audio/unavailable.ulaw` (`LINE`, 5.4 s, raw μ-law 8 kHz mono), rendered
once with espeak-ng and sox::

    espeak-ng -v en-us -s 160 -w line.wav "$LINE"
    sox line.wav -t raw -e mu-law -b 8 -r 8000 -c 1 unavailable.ulaw \\
        silence 1 0.02 0.5% reverse silence 1 0.02 0.5% reverse \\
        highpass 250 lowpass 3400 norm -3 pad 0.15 0.2

`transport.twilio`'s `unavailable_audio` names a WAV file to play instead.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import logging
import re
from importlib import resources
from typing import TYPE_CHECKING, Any

from flowspec.audio import PCMU, convert, read_wav
from flowspec.errors import UsageError
from flowspec.transports.channel import ended
from flowspec.transports.wire import ClientMessageError, ClientSocket, dumps, parse_object

if TYPE_CHECKING:
    from flowspec.runtime.session import Session

log = logging.getLogger("flowspec.transports.twilio")

LINE = "Sorry, the assistant cannot take your call right now. Please try again later."
MARK = "flowspec:unavailable"
CHUNK_BYTES = 160
"""20 ms of μ-law 8 kHz, as Twilio sends its own."""
START_WAIT_S = 5.0
"""How long a stream that has not said `start` yet is given to (Twilio sends it at once)."""
MARK_MARGIN_S = 2.0
"""How much longer than the line itself Twilio is given to echo its mark."""
MAX_LINE_S = 30.0
"""A longer `unavailable_audio` is cut: a call that cannot go on is not held open for long."""

_NODE_FAILED = re.compile(r"node '[^']*' failed: ")
"""How a session names a fatal node failure as its end reason (`flowspec.runtime.session`)."""


def could_not_go_on(reason: str) -> bool:
    """Whether a call ended (or never started) because the bot could not go on: its model could
    not be reached or refused it, or a node failed fatally; not because someone hung up, the
    call ran its course or the server is going away."""
    code, _sentence = ended(reason, "")
    return code in ("model_unavailable", "model_refused") or bool(_NODE_FAILED.match(reason))


@functools.cache
def builtin_line() -> bytes:
    """`LINE`, spoken: μ-law 8 kHz mono."""
    folder = resources.files("flowspec.transports").joinpath("audio")
    return folder.joinpath("unavailable.ulaw").read_bytes()


def line_audio(path: str | None) -> bytes:
    """The line to play, as μ-law 8 kHz mono: the WAV file at `path` (PCM or float samples, any
    rate and channels), else the built-in line. A file that cannot be played is logged, and the
    built-in line plays instead: the caller still hears why."""
    if not path:
        return builtin_line()
    try:
        fmt, samples = read_wav(path)
        audio = convert(samples, fmt, PCMU)
    except ValueError as exc:
        log.warning("unavailable_audio cannot be played (%s); playing the built-in line", exc)
        return builtin_line()
    limit = int(MAX_LINE_S * PCMU.sample_rate)
    if len(audio) > limit:
        log.warning("unavailable_audio %s is longer than %.0f s: only its start is played", path,
                    MAX_LINE_S)
    return audio[:limit] or builtin_line()


async def tell_caller(socket: ClientSocket, session: Session, path: str | None) -> None:
    """After a Twilio session: a caller whose call could not start, or could not go on, hears
    the line (`path`'s, else the built-in one) on the stream the transport left open for it."""
    if socket.closed or not could_not_go_on(session.call.end_reason):
        return
    entry = session.graph.entry
    try:
        stream_sid = getattr(session.node(entry), "stream_sid", None) if entry else None
    except UsageError:  # the session failed before its transport was built
        stream_sid = None
    audio = await asyncio.to_thread(line_audio, path)
    if await say_unavailable(socket, audio, stream_sid):
        log.info("session %s: the caller heard that the bot cannot take the call", session.id)


async def say_unavailable(socket: ClientSocket, audio: bytes,
                          stream_sid: str | None = None) -> bool:
    """Play `audio` (μ-law 8 kHz) on a Twilio stream and return once it has played: Twilio
    echoed the mark sent after it, the stream stopped, or the line's length and a margin
    passed. A stream whose `start` has not been read yet (`stream_sid` None) is read up to it;
    its other messages are dropped. Returns whether the line was sent: not to a stream that
    never started. What the stream sends never raises here."""
    if stream_sid is None:
        try:
            async with asyncio.timeout(START_WAIT_S):
                start = await _next(socket, "start")
        except TimeoutError:
            start = None
        stream_sid = _stream_sid(start) if start is not None else None
        if stream_sid is None:
            return False
    for offset in range(0, len(audio), CHUNK_BYTES):
        payload = base64.b64encode(audio[offset:offset + CHUNK_BYTES]).decode("ascii")
        await socket.send_text(dumps({"event": "media", "streamSid": stream_sid,
                                      "media": {"payload": payload}}))
    await socket.send_text(dumps({"event": "mark", "streamSid": stream_sid,
                                  "mark": {"name": MARK}}))
    try:
        async with asyncio.timeout(len(audio) / PCMU.sample_rate + MARK_MARGIN_S):
            while (mark := await _next(socket, "mark")) is not None:
                if isinstance(mark.get("mark"), dict) and mark["mark"].get("name") == MARK:
                    break
    except TimeoutError:
        log.debug("Twilio did not echo the unavailable line's mark; closing the stream")
    return True


async def _next(socket: ClientSocket, event: str) -> dict[str, Any] | None:
    """The stream's next message of type `event`; None once the stream stops or closes."""
    while (message := await socket.receive()) is not None:
        if isinstance(message, bytes):
            continue
        try:
            kind, body = parse_object(message, key="event")
        except ClientMessageError:
            continue  # nothing it says changes what the caller is about to hear
        if kind == "stop":
            return None
        if kind == event:
            return body
    return None


def _stream_sid(start: dict[str, Any]) -> str | None:
    inner = start.get("start")
    sid = start.get("streamSid", inner.get("streamSid") if isinstance(inner, dict) else None)
    return sid if isinstance(sid, str) and sid else None
