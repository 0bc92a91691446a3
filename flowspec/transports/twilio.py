"""`transport.twilio`: Twilio Media Streams, and the TwiML webhook that points a call at it.

Twilio → flowspec, JSON text messages keyed by `event`: `connected`; `start` (`streamSid`,
`start.customParameters`, `start.mediaFormat`); `media` (`media.payload`: base64 μ-law 8 kHz);
`dtmf` (`dtmf.digit`: the spec's `commit_key` ends the caller's turn, its `interrupt_key` stops
the bot, any other key is a `DTMFFrame`); `mark` (`mark.name`, echoed once the audio sent before
it has played, or when a `clear` discarded it); `stop`.

flowspec → Twilio: `media` (base64 μ-law), a `mark` after each chunk (named `item_id:end_ms`, so
an echoed mark says how much of the item was played) and `clear` on barge-in. A call the bot
cannot take (or go on with) ends with a spoken line instead of silence (`unavailable.py`).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import time
from collections.abc import Callable, Mapping
from typing import Any
from xml.sax.saxutils import quoteattr

from flowspec.conversation.variables import VariableRefused
from flowspec.frames import (
    AudioFrame,
    BotSpeechEndedFrame,
    BotSpeechStartedFrame,
    CommitInputFrame,
    DTMFFrame,
    EndFrame,
    Frame,
    InterruptFrame,
)
from flowspec.runtime.bus import ClientConnected, ClientMessageRejected
from flowspec.runtime.node import Context
from flowspec.transports.playback import Playback, report_interruption
from flowspec.transports.unavailable import could_not_go_on
from flowspec.transports.wire import (
    CLOSE_GOING_AWAY,
    ClientMessageError,
    Connection,
    dumps,
    parse_object,
)

MAX_MESSAGE_BYTES = 65_536  # Twilio sends 20 ms chunks: a few hundred bytes each
MAX_PARAMETERS = 64
MAX_PARAMETER_CHARS = 4_000


class TwilioTransport:
    boundary = True
    reports_playback = True
    """The client says what it has played (`BotSpeechEndedFrame` once it all has)."""

    def __init__(self, ctx: Context, connection: Connection | None = None, *,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.ctx = ctx
        self.connection = connection
        self.clear_on_interruption = bool(getattr(ctx.spec, "clear_on_interruption", True))
        self.commit_key: str | None = getattr(ctx.spec, "commit_key", None)
        self.interrupt_key: str | None = getattr(ctx.spec, "interrupt_key", None)
        self.playback = Playback(clock)
        self.stream_sid: str | None = None
        self.call_sid: str | None = None
        self.custom_parameters: dict[str, str] = {}
        self._media_ms = 0.0
        self._marks = 0

    @property
    def reports_caller(self) -> bool:
        """With a stream, the call begins at its `start`, with its custom parameters."""
        return self.connection is not None

    async def start(self) -> None:
        if self.connection is not None:
            self.ctx.spawn(self._receive(), name=f"flowspec:{self.ctx.node_id}:receive",
                           essential=True)

    async def stop(self) -> None:
        if self.connection is None or self.connection.socket.closed:
            return
        if could_not_go_on(self.ctx.call.end_reason):
            return  # the server tells the caller why, then closes it (`unavailable.py`)
        await self.connection.socket.close(CLOSE_GOING_AWAY, "session ended")

    # -- output ----------------------------------------------------------------------------------

    async def handle(self, frame: Frame, port: str) -> None:
        if self.connection is None or self.stream_sid is None:
            return  # before `start` Twilio cannot route media: there is no stream yet
        if isinstance(frame, AudioFrame):
            await self._play(frame)
        elif isinstance(frame, InterruptFrame):
            await self._interrupt()

    async def _play(self, frame: AudioFrame) -> None:
        assert self.connection is not None
        if frame.encoding != "pcmu" or frame.sample_rate != 8000 or frame.channels != 1:
            raise ValueError(f"Twilio plays μ-law 8 kHz mono, got {frame.encoding} "
                             f"{frame.sample_rate} Hz; an audio.convert node belongs before it.")
        if self.playback.sent(frame.item_id, frame.duration_ms):
            await self.ctx.emit(BotSpeechStartedFrame(item_id=frame.item_id))
        payload = base64.b64encode(frame.audio).decode("ascii")
        self.connection.count("out", "AudioFrame")
        await self._send({"event": "media", "streamSid": self.stream_sid,
                          "media": {"payload": payload}})
        self._marks += 1
        name = f"{frame.item_id or ''}:{self.playback.sent_ms:.0f}:{self._marks}"
        await self._send({"event": "mark", "streamSid": self.stream_sid, "mark": {"name": name}})

    async def _interrupt(self) -> None:
        async def clear(_item_id: str | None) -> None:
            if self.clear_on_interruption:
                await self._send({"event": "clear", "streamSid": self.stream_sid})

        await report_interruption(self.ctx, self.playback, clear)

    async def _send(self, message: dict[str, Any]) -> None:
        assert self.connection is not None
        await self.connection.socket.send_text(dumps(message))

    # -- input -----------------------------------------------------------------------------------

    async def _receive(self) -> None:
        # As for the browser's socket: however the loop ends, the session is asked to end.
        reason = ""  # cancelled: the session is ending already, for its own reason
        try:
            reason = await self._read()
        except Exception as exc:
            # Spawned as essential: the session also sees the failure itself, and cancels.
            reason = f"receiving from Twilio failed: {exc!r}"
            raise
        finally:
            await self.ctx.emit(EndFrame(reason=reason))

    async def _read(self) -> str:
        assert self.connection is not None
        socket = self.connection.socket
        while (message := await socket.receive()) is not None:
            try:
                if isinstance(message, bytes) or len(message) > MAX_MESSAGE_BYTES:
                    raise ClientMessageError("invalid_message", "Twilio sends JSON text "
                                             "messages of a few hundred bytes.")
                event, body = parse_object(message, key="event")
                if await self._on_event(event, body):
                    return "call ended"
            except ClientMessageError as exc:
                # Twilio cannot act on error replies: the message is dropped, and reported.
                self.ctx.publish(ClientMessageRejected(
                    session_id=self.ctx.session_id, node_id=self.ctx.node_id, code=exc.code,
                    message=str(exc)))
        return "Twilio closed the stream"

    async def _on_event(self, event: str, body: dict[str, Any]) -> bool:
        match event:
            case "connected":
                pass
            case "start":
                self._on_start(body)
            case "media":
                await self._on_media(body)
            case "mark":
                await self._on_mark(body)
            case "dtmf":
                digit = _field(body, "dtmf", "digit")
                if digit == self.commit_key:
                    await self.ctx.emit(CommitInputFrame())
                elif digit == self.interrupt_key:
                    await self.ctx.emit(InterruptFrame())
                else:
                    await self.ctx.emit(DTMFFrame(digit=digit))
            case "stop":
                return True
            case _:
                raise ClientMessageError("unknown_type", f"Unknown Twilio event {event!r}.")
        return False

    def _on_start(self, body: dict[str, Any]) -> None:
        start = body.get("start")
        if not isinstance(start, dict):
            raise ClientMessageError("invalid_message", "`start` has no `start` object.")
        sid = body.get("streamSid", start.get("streamSid"))
        if not isinstance(sid, str):
            raise ClientMessageError("invalid_message", "`start` has no `streamSid`.")
        self.stream_sid = sid
        call_sid = start.get("callSid")
        self.call_sid = call_sid if isinstance(call_sid, str) else None
        params = start.get("customParameters")
        if isinstance(params, dict):
            self.custom_parameters = {str(k)[:100]: str(v)[:MAX_PARAMETER_CHARS]
                                      for k, v in list(params.items())[:MAX_PARAMETERS]}
        self._begin()
        self.ctx.publish(ClientConnected(
            session_id=self.ctx.session_id, node_id=self.ctx.node_id, transport="twilio",
            details={"stream_sid": sid, "call_sid": self.call_sid,
                     "custom_parameters": dict(self.custom_parameters)}))

    def _begin(self) -> None:
        """The call's variables: the stream's `<Parameter>`s, less the ones flowspec's own TwiML
        adds (`From` and `To`, or parameters named `caller` and `called`, become those
        built-ins)."""
        values = dict(self.custom_parameters)
        caller = values.pop("From", "") or values.pop("caller", "")
        called = values.pop("To", "") or values.pop("called", "")
        for name in ("CallSid", "caller", "called"):
            values.pop(name, None)
        try:
            self.ctx.call.begin(values, transport="transport.twilio", caller=caller,
                                called=called)
        except VariableRefused:
            pass  # Twilio shows a caller nothing: the refusal is logged, and the call ends

    async def _on_media(self, body: dict[str, Any]) -> None:
        assert self.connection is not None
        media = body.get("media")
        if isinstance(media, dict) and media.get("track", "inbound") != "inbound":
            return
        payload = _field(body, "media", "payload")
        try:
            audio = base64.b64decode(payload, validate=True)
        except (binascii.Error, ValueError):
            raise ClientMessageError("invalid_message", "`media.payload` is not base64.") from None
        if not audio:
            return
        frame = AudioFrame(audio=audio, encoding="pcmu", sample_rate=8000,
                           timestamp_ms=self._media_ms)
        self._media_ms += frame.duration_ms
        self.connection.count("in", "AudioFrame")
        await self.ctx.emit(frame)

    async def _on_mark(self, body: dict[str, Any]) -> None:
        parts = _field(body, "mark", "name").rsplit(":", 2)
        try:
            item_id, played = parts[0], float(parts[1])
        except (IndexError, ValueError):
            return  # not a mark this transport sent
        self.playback.confirmed(item_id, played)  # playing on unless that is all that was sent
        finished = self.playback.finished()
        if finished is not None:
            await self.ctx.emit(BotSpeechEndedFrame(item_id=finished or None))


def _field(body: Mapping[str, Any], outer: str, inner: str) -> str:
    value = body.get(outer)
    found = value.get(inner) if isinstance(value, dict) else None
    if not isinstance(found, str):
        raise ClientMessageError("invalid_message", f"`{outer}.{inner}` must be a string.")
    return found


# -- the TwiML webhook ---------------------------------------------------------------------------


def stream_url(public_url: str | None, scheme: str, host: str, path: str) -> str:
    """The `wss://` URL Twilio streams to: from `public_url`, else from the webhook request."""
    if public_url:
        base = public_url.rstrip("/")
        base = "wss://" + base[8:] if base.startswith("https://") else base
        base = "ws://" + base[7:] if base.startswith("http://") else base
        return base + path
    return f"{'wss' if scheme == 'https' else 'ws'}://{host}{path}"


def twiml(url: str, parameters: Mapping[str, str]) -> str:
    """TwiML connecting the call to a media stream at `url`, passing `parameters` to `start`."""
    params = "".join(f"<Parameter name={quoteattr(k)} value={quoteattr(v)}/>"
                     for k, v in parameters.items())
    return ('<?xml version="1.0" encoding="UTF-8"?>'
            f"<Response><Connect><Stream url={quoteattr(url)}>{params}</Stream></Connect>"
            "</Response>")


def signature(auth_token: str, url: str, params: Mapping[str, str]) -> str:
    """Twilio's `X-Twilio-Signature`: HMAC-SHA1 of the URL followed by the sorted POST fields."""
    data = url + "".join(k + params[k] for k in sorted(params))
    digest = hmac.new(auth_token.encode(), data.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode("ascii")


def signature_valid(auth_token: str, url: str, params: Mapping[str, str], given: str) -> bool:
    return hmac.compare_digest(signature(auth_token, url, params), given)
