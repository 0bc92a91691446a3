"""The call-time half of `flowspec.nodes.netpolicy`: an aiohttp resolver that keeps only the
addresses the policy allows, and the client session every calling-out node opens with it.

A host name that looked public when the spec was validated may resolve to 127.0.0.1 today (DNS
rebinding), so the check runs again on what the resolver answers, just before connecting.
aiohttp does not ask the resolver about IP literals: callers check the URL itself with
`netpolicy.url_problem` before each request.
"""

from __future__ import annotations

import errno
import socket

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver

from flowspec.nodes.netpolicy import address_problem


class PrivateAddressRefused(OSError):
    """A host resolved only to addresses the policy refuses. aiohttp raises it wrapped in a
    `ClientConnectorDNSError` (its `os_error`)."""

    def __init__(self, host: str, address: str, reason: str) -> None:
        super().__init__(errno.EACCES, f"{host} resolves to {address}, which {reason}")
        self.host = host
        self.address = address
        self.reason = reason


class PolicyResolver(AbstractResolver):
    """Resolves with `inner` (aiohttp's default when None) and drops every address that is not
    public unless `allow_private`; raises PrivateAddressRefused when none is left."""

    def __init__(self, inner: AbstractResolver | None = None, *,
                 allow_private: bool = False) -> None:
        self._owns_inner = inner is None
        self._inner: AbstractResolver = inner if inner is not None else DefaultResolver()
        self.allow_private = allow_private

    async def resolve(self, host: str, port: int = 0,
                      family: socket.AddressFamily = socket.AF_INET) -> list[ResolveResult]:
        results = await self._inner.resolve(host, port, family)
        if self.allow_private:
            return results
        kept = [r for r in results if address_problem(r["host"]) is None]
        if not kept and results:
            first = results[0]["host"]
            raise PrivateAddressRefused(host, first, address_problem(first) or "is refused")
        return kept

    async def close(self) -> None:
        if self._owns_inner:
            await self._inner.close()


class GuardedClient:
    """The aiohttp session of one calling-out node, its connections guarded by a PolicyResolver
    around `lookup` (aiohttp's default resolver when None; a test passes its own).

    Proxy settings from the environment are ignored (`trust_env` off): a proxy would resolve
    the name itself, past the guard. When `allow_private` changes (it is a live field), the
    session is replaced, so no pooled connection or cached lookup made under the other setting
    is used again."""

    def __init__(self, lookup: AbstractResolver | None = None) -> None:
        self._lookup = lookup
        self._session: aiohttp.ClientSession | None = None
        self._resolver: PolicyResolver | None = None
        self._allow_private = False

    async def session(self, *, allow_private: bool) -> aiohttp.ClientSession:
        if self._session is None or self._allow_private != allow_private:
            await self.close()
            self._resolver = PolicyResolver(self._lookup, allow_private=allow_private)
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(resolver=self._resolver), trust_env=False)
            self._allow_private = allow_private
        return self._session

    async def close(self) -> None:
        session, self._session = self._session, None
        resolver, self._resolver = self._resolver, None
        if session is not None:
            await session.close()
        if resolver is not None:  # the connector closes only a resolver it made itself
            await resolver.close()
