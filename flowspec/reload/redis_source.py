"""A spec's truth in Redis, shared by every replica (`flowspec serve --store redis://HOST:PORT/DB`).

Per spec name, three keys: a hash holding the current revision (`version`, `etag`, `text`), a
list of the last `HISTORY` revisions, and a channel announcing each new version. A change is one
Lua script, so it is a compare-and-set: it lands only when the store still holds the version the
change was based on, and of any number of concurrent changes from any replicas exactly one wins.
Each replica applies every version in order (from the history; when it fell further behind than
the history reaches, it jumps to the latest), catches up on start and after every reconnection,
and while Redis is unreachable keeps serving its last good version, says so on `/healthz` and in
`/metrics`, retries with backoff, and refuses admin changes (503) rather than apply one replica
alone. A store that lost its data (a restarted Redis without persistence) is seeded again with
the version the replicas serve.

Needs the `redis` package: `pip install 'flowspec[redis]'`.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Sequence
from typing import Any

from flowspec.reload.source import Revision, SourceError, text_etag

log = logging.getLogger("flowspec.reload")

HISTORY = 100
BACKOFF = (0.2, 0.5, 1.0, 2.0, 5.0)
"""Seconds between reconnection attempts (the last repeats)."""

# KEYS: current hash, history list, channel. ARGV: base version, new version, the revision as
# one JSON entry (its "version" written as 0: the script puts the real one), etag, text, history
# length. Returns {1, version} or {0, current version}. The announcement carries the whole
# entry, so a replica applies it without another round trip.
_PROPOSE = """
local current = tonumber(redis.call('HGET', KEYS[1], 'version') or '0')
if current ~= tonumber(ARGV[1]) then return {0, current} end
local version = tonumber(ARGV[2])
if version <= current then version = current + 1 end
local entry = string.gsub(ARGV[3], '^{"version": 0', '{"version": ' .. version, 1)
redis.call('HSET', KEYS[1], 'version', version, 'etag', ARGV[4], 'text', ARGV[5],
           'entry', entry)
redis.call('RPUSH', KEYS[2], entry)
redis.call('LTRIM', KEYS[2], -tonumber(ARGV[6]), -1)
redis.call('PUBLISH', KEYS[3], entry)
return {1, version}
"""


class RedisSource:
    """One spec in a Redis store. `seed` is the revision a store that holds none gets (the
    spec file at start, or what this replica serves after Redis lost its data)."""

    kind = "redis"

    def __init__(self, url: str, name: str, seed: Revision, *,
                 backoff: Sequence[float] = BACKOFF) -> None:
        try:
            import redis.asyncio as redis
        except ImportError as exc:  # pragma: no cover - depends on the installation
            raise SourceError("store_unavailable", 503, "--store needs the redis package: "
                              "pip install 'flowspec[redis]'") from exc
        self.url = url
        self.name = name
        self.seed = seed
        self._client = redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=5,
                                            health_check_interval=5)
        self._propose = self._client.register_script(_PROPOSE)
        self._keys = [f"flowspec:spec:{name}", f"flowspec:spec:{name}:history",
                      f"flowspec:spec:{name}:changed"]
        self._backoff = tuple(backoff)
        self.connected = False
        self.error = ""
        self._applied = 0  # the last version handed out by `changes` or `current`

    async def close(self) -> None:
        await self._client.aclose()

    # -- reading --------------------------------------------------------------------------------

    async def current(self) -> Revision:
        revision = await self._latest()
        self._applied = revision.version
        return revision

    async def _latest(self) -> Revision:
        """The store's revision, seeding an empty store with `seed`."""
        try:
            found = await self._client.hget(self._keys[0], "entry")
            if found is None:
                await self._write(self.seed, base=0)
                found = await self._client.hget(self._keys[0], "entry")
        except Exception as exc:  # the client's errors: connection, timeout, protocol
            raise self._down(exc) from None
        self._up()
        if found is None:  # emptied again between the two calls: hold on to what is served
            return self.seed
        return _entry(found)

    async def _since(self, version: int, latest: int | None = None) -> list[Revision]:
        """The revisions after `version` (up to `latest`, when known), oldest first; only the
        latest when the history does not reach back that far."""
        wanted = HISTORY if latest is None else min(HISTORY, latest - version)
        if wanted <= 0:
            return []
        try:
            entries = await self._client.lrange(self._keys[1], -wanted, -1)
        except Exception as exc:
            raise self._down(exc) from None
        newer = [r for r in map(_entry, entries) if r.version > version]
        if newer and newer[0].version == version + 1:
            return newer
        current = await self._latest()
        return [current] if current.version > version else []

    # -- writing --------------------------------------------------------------------------------

    async def propose(self, text: str, base: Revision, data: Any = None) -> Revision:
        revision = Revision(base.version + 1, text, text_etag(text), data)
        try:
            written, current = await self._write(revision, base=base.version)
        except Exception as exc:
            raise self._down(exc) from None
        self._up()
        if not written:
            raise SourceError("conflict", 409, f"the store holds version {current}, not "
                              f"version {base.version} this change was based on; apply it "
                              "to the latest", running={"version": base.version,
                                                        "etag": base.etag},
                              store={"version": int(current)})
        self._applied = max(self._applied, int(current))
        return Revision(int(current), text, revision.etag, data)

    async def _write(self, revision: Revision, *, base: int) -> tuple[int, int]:
        entry = json.dumps({"version": 0, "etag": revision.etag, "text": revision.text,
                            "data": revision.data}, ensure_ascii=False)
        written, current = await self._propose(keys=self._keys, args=[
            base, revision.version, entry, revision.etag, revision.text, HISTORY])
        return int(written), int(current)

    def refusal(self) -> SourceError | None:
        if self.connected:
            return None
        return SourceError("store_unavailable", 503, f"the spec store ({_safe(self.url)}) is "
                           f"unreachable ({self.error}); changes are refused until it is back, "
                           "so no replica runs a version the others do not")

    # -- following ------------------------------------------------------------------------------

    async def changes(self, stop: asyncio.Event) -> AsyncIterator[Revision]:
        """Every version after the last one handed out, in order; reconnects with backoff."""
        failures = 0
        while not stop.is_set():
            pubsub = self._client.pubsub()
            try:
                await pubsub.subscribe(self._keys[2])
                self._up()
                failures = 0
                # Announcements made before the subscription are not delivered: look first.
                async for revision in self._catch_up():
                    yield revision
                while not stop.is_set():
                    message = await pubsub.get_message(ignore_subscribe_messages=True,
                                                       timeout=0.5)
                    if message is None:
                        continue
                    announced = _entry(message["data"])
                    if announced.version == self._applied + 1:
                        self._applied = announced.version
                        yield announced
                    elif announced.version > self._applied:
                        async for revision in self._catch_up(announced.version):
                            yield revision
            except SourceError:
                pass  # `_down` noted it; wait and reconnect
            except Exception as exc:
                self._down(exc)
            finally:
                try:
                    await pubsub.aclose()  # type: ignore[no-untyped-call]
                except Exception:  # noqa: BLE001 - a broken connection may fail to close too
                    log.debug("closing the store subscription failed", exc_info=True)
            if stop.is_set():
                return
            delay = self._backoff[min(failures, len(self._backoff) - 1)]
            failures += 1
            try:
                async with asyncio.timeout(delay):
                    await stop.wait()
            except TimeoutError:
                pass

    async def _catch_up(self, latest: int | None = None) -> AsyncIterator[Revision]:
        for revision in await self._since(self._applied, latest):
            self._applied = revision.version
            yield revision

    def served(self, revision: Revision) -> None:
        # A store that lost its data (a restarted Redis without persistence) is seeded with
        # this, under its own number, so versions never go back.
        self.seed = revision
        self._applied = max(self._applied, revision.version)

    # -- health ---------------------------------------------------------------------------------

    def health(self) -> dict[str, Any]:
        body: dict[str, Any] = {"kind": self.kind, "ok": self.connected, "url": _safe(self.url)}
        if not self.connected:
            body["error"] = self.error
        return body

    def _up(self) -> None:
        if not self.connected:
            if self.error:
                log.info("spec store %s is reachable again", _safe(self.url))
            self.connected, self.error = True, ""

    def _down(self, exc: BaseException) -> SourceError:
        reason = f"{type(exc).__name__}: {exc}"[:200]
        if self.connected or not self.error:
            log.warning("spec store %s is unreachable (%s); serving the last good version",
                        _safe(self.url), reason)
        self.connected, self.error = False, reason
        return SourceError("store_unavailable", 503, f"the spec store is unreachable "
                           f"({reason})")


def _entry(raw: bytes | str) -> Revision:
    """A revision from its stored JSON entry."""
    entry = json.loads(raw)
    return Revision(int(entry["version"]), str(entry["text"]), str(entry["etag"]),
                    entry.get("data"))


def _safe(url: str) -> str:
    """The URL without a password (`redis://:secret@host` → `redis://***@host`)."""
    scheme, sep, rest = url.partition("://")
    if "@" in rest:
        rest = "***@" + rest.rsplit("@", 1)[1]
    return f"{scheme}{sep}{rest}"
