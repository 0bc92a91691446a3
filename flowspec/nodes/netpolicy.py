"""Which network addresses a node that calls out (`tool.http`, `events.webhook`) may reach.

A URL in a spec is called by the server, on behalf of a model or a caller, so by default it must
lead to the public internet: not to the server itself (loopback), the cloud's metadata service
(link-local 169.254.169.254), or the private network behind it. The same rule runs when the spec
is validated (on IP literals and `localhost`, all a name shows) and at each call, on the addresses
a host name resolves to (`flowspec.nodes.netguard`), since DNS may answer anything.

Only the standard library here: `flowspec validate` imports this module and stays fast.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from dataclasses import dataclass
from typing import Literal
from urllib.parse import urlsplit

Address = ipaddress.IPv4Address | ipaddress.IPv6Address

_SHARED = ipaddress.ip_network("100.64.0.0/10")  # RFC 6598, carrier-grade NAT
_NAT64 = ipaddress.ip_network("64:ff9b::/96")  # RFC 6052: an IPv4 address in its last 32 bits
# The IPv4 forms getaddrinfo also reads as an address: `127.1`, `0x7f.1`, `2130706433`.
_LEGACY_V4 = re.compile(r"(?:0[xX][0-9a-fA-F]*|[0-9]+)(?:\.(?:0[xX][0-9a-fA-F]*|[0-9]+)){0,3}")


@dataclass(frozen=True, slots=True)
class UrlProblem:
    """Why a URL is refused. `kind` is `credentials` (a user name or password in the URL, always
    refused) or `private-network`; `host` is the URL's host, `reason` a phrase about it
    ("is a loopback address")."""

    kind: Literal["credentials", "private-network"]
    host: str
    reason: str


def ip_literal(host: str) -> Address | None:
    """`host` as an IP address when it is one, in any form a resolver reads as one; else None."""
    name = host.strip("[]")
    try:
        return ipaddress.ip_address(name)
    except ValueError:
        pass
    if _LEGACY_V4.fullmatch(name):
        try:
            return ipaddress.IPv4Address(socket.inet_aton(name))
        except OSError:
            return None
    return None


def address_problem(address: Address | str) -> str | None:
    """None when `address` is on the public internet; otherwise what it is ("is a loopback
    address"). An IPv6 address that carries an IPv4 one (mapped, 6to4, NAT64) is judged by it."""
    ip = ipaddress.ip_address(address) if isinstance(address, str) else address
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = ip.ipv4_mapped or ip.sixtofour
        if embedded is None and ip in _NAT64:
            embedded = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
        if embedded is not None:
            return address_problem(embedded)
        if ip.is_site_local:
            return "is a site-local address"
    if ip.is_loopback:
        return "is a loopback address (this machine)"
    if ip.is_link_local:
        return "is a link-local address (where cloud metadata services such as " \
            "169.254.169.254 answer)"
    if ip.is_unspecified:
        return "is the unspecified address (this machine)"
    if ip.is_multicast:
        return "is a multicast address"
    if ip in _SHARED:
        return "is a shared (carrier-grade NAT) address"
    if ip.is_reserved:
        return "is a reserved address"
    if ip.is_private:
        return "is a private-network address"
    if not ip.is_global:
        return "is not a public address"
    return None


def host_problem(host: str) -> str | None:
    """What the host of a URL shows by itself: None, or why it is not public (an IP literal
    that is not, or a name of this machine: `localhost`, `*.localhost`)."""
    name = host.strip("[]").rstrip(".").lower()
    if name == "localhost" or name.endswith(".localhost"):
        return "names this machine (localhost)"
    address = ip_literal(name)
    return address_problem(address) if address is not None else None


def url_problem(url: str, allow_private: bool) -> UrlProblem | None:
    """Why `url` may not be called: credentials in it, or (unless `allow_private`) a host that is
    not public by its name. A name that resolves to a private address passes here; the
    resolver refuses it at call time."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        credentials = parts.username is not None or parts.password is not None
    except ValueError:  # an unbalanced `[` in the host: the schema or aiohttp reports it
        return None
    if credentials:
        return UrlProblem("credentials", host, "carries a user name or password")
    if allow_private or not host:
        return None
    reason = host_problem(host)
    return UrlProblem("private-network", host, reason) if reason else None
