"""Who may reach `flowspec serve`: the Host every request names, the Origin of browser sockets and
admin requests, and the admin token.

A web page the user's browser opens can send requests to a server on loopback. Two checks keep it
out. The `Host` header must name this server (DNS rebinding points a name the attacker controls at
127.0.0.1; the browser then sends that name, never ours): IP literals, `localhost`, the bound name
and `--allowed-host` entries pass, anything else gets 421. And an `Origin` other than the server's
own is refused on the admin API always, and on browser sockets unless the transport lists it in
`allowed_origins` (a WebSocket is not subject to the browser's same-origin policy).

The admin API always needs its bearer token, loopback included: a process that can make a loopback
request is not therefore the operator. Without one configured, `serve` makes one per start, prints
it once and writes it to a file only its user can read, where `flowspec patch --server` finds it.
"""

from __future__ import annotations

import contextlib
import hmac
import ipaddress
import os
import secrets
from collections.abc import Iterable, Mapping
from pathlib import Path
from urllib.parse import urlsplit

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443}


def _split_host(value: str) -> tuple[str, int | None] | None:
    """`(host, port)` of a Host header or netloc, host lowercased, brackets dropped; None when
    it does not parse."""
    try:
        parts = urlsplit(f"//{value.strip()}")
        host, port = parts.hostname, parts.port
    except ValueError:
        return None
    if not host or parts.username is not None or parts.password is not None:
        return None
    return host.lower().rstrip("."), port


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


class HostPolicy:
    """Which `Host` headers name this server. `allowed` entries are names (`bot.example.com`),
    suffixes (`.example.com` or `*.example.com`), or `*` for any."""

    def __init__(self, bound: str = "127.0.0.1", allowed: Iterable[str] = ()) -> None:
        self.any = False
        self.names: set[str] = {"localhost"}
        self.suffixes: set[str] = {".localhost"}
        for entry in (bound, *allowed):
            entry = entry.strip().lower().rstrip(".")
            if entry == "*":
                self.any = True
            elif entry.startswith(("*.", ".")):
                self.suffixes.add("." + entry.lstrip("*."))
            elif entry and not _is_ip(entry.strip("[]")) and entry not in ("0.0.0.0", "::"):
                self.names.add(entry)

    def allows(self, header: str | None) -> bool:
        if self.any:
            return True
        if not header:
            return False  # HTTP/1.1 requires Host; a request without one names nothing
        split = _split_host(header)
        if split is None:
            return False
        host = split[0]
        return _is_ip(host) or host in self.names or host.endswith(tuple(self.suffixes))

    def middleware(self) -> Middleware:
        @web.middleware
        async def check_host(request: web.Request, handler: Handler) -> web.StreamResponse:
            if not self.allows(request.headers.get("Host")):
                return web.json_response(
                    {"error": "misdirected", "message": "This server does not answer for that "
                     "host name; start `flowspec serve` with --allowed-host NAME to serve it."},
                    status=421)
            return await handler(request)

        return check_host


def normalised_origin(origin: str) -> str | None:
    """`scheme://host[:port]` with the default port left out, lowercased; None when `origin` is
    not a web origin (`null`, garbage)."""
    try:
        parts = urlsplit(origin.strip())
        port = parts.port
    except ValueError:
        return None
    scheme, host = parts.scheme.lower(), (parts.hostname or "").lower()
    if scheme not in ("http", "https") or not host:
        return None
    shown = f"[{host}]" if ":" in host else host
    if port is not None and port != DEFAULT_PORTS[scheme]:
        shown += f":{port}"
    return f"{scheme}://{shown}"


def same_origin(origin: str, host_header: str | None) -> bool:
    """Whether a browser's `Origin` is the page this server serves under `host_header` (a port
    left out means the scheme's default on both sides)."""
    try:
        parts = urlsplit(origin.strip())
        scheme, port = parts.scheme.lower(), parts.port
    except ValueError:
        return False
    split = _split_host(host_header or "")
    if scheme not in DEFAULT_PORTS or not parts.hostname or split is None:
        return False
    default = DEFAULT_PORTS[scheme]
    return split[0] == parts.hostname.lower().rstrip(".") and \
        (split[1] or default) == (port or default)


def origin_allowed(headers: Mapping[str, str], allowed: Iterable[str]) -> bool:
    """A connection may open a browser socket: it sends no `Origin` (not a browser), or its
    page is this server's own, or `allowed` lists it (`*`: any)."""
    origin = headers.get("Origin")
    if origin is None:
        return True
    if same_origin(origin, headers.get("Host")):
        return True
    normal = normalised_origin(origin)
    listed = set(allowed)
    return "*" in listed or (normal is not None and any(
        normalised_origin(entry) == normal for entry in listed))


# -- the admin token ------------------------------------------------------------------------------


def bearer_matches(headers: Mapping[str, str], token: str) -> bool:
    """`Authorization: Bearer <token>`, compared in constant time."""
    scheme, _, value = headers.get("Authorization", "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(value.strip().encode(),
                                                             token.encode())


def new_token() -> str:
    return secrets.token_urlsafe(24)


def state_dir(env: Mapping[str, str] | None = None) -> Path:
    """Where `serve` leaves files for the CLI of the same user: `FLOWSPEC_STATE_DIR`, else
    `$XDG_RUNTIME_DIR/flowspec`, else `~/.local/state/flowspec`."""
    environ = os.environ if env is None else env
    if environ.get("FLOWSPEC_STATE_DIR"):
        return Path(environ["FLOWSPEC_STATE_DIR"])
    if environ.get("XDG_RUNTIME_DIR"):
        return Path(environ["XDG_RUNTIME_DIR"]) / "flowspec"
    return Path.home() / ".local" / "state" / "flowspec"


def token_path(port: int, env: Mapping[str, str] | None = None) -> Path:
    return state_dir(env) / f"admin-{port}.token"


def write_token(token: str, port: int, env: Mapping[str, str] | None = None) -> Path:
    """Write `token` where `flowspec patch --server` looks for the server on `port`; readable by
    this user only (the directory 0700, the file 0600, created so from the start)."""
    path = token_path(port, env)
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(token + "\n")
    return path


def read_token_file(path: str | Path) -> str:
    """The token in a file (`--admin-token-file`, or the one `serve` wrote). OSError when
    unreadable; ValueError when empty."""
    token = Path(path).read_text(encoding="utf-8").strip()
    if not token:
        raise ValueError(f"{path} holds no token")
    return token


def port_of(url: str) -> int | None:
    try:
        parts = urlsplit(url)
        return parts.port or DEFAULT_PORTS.get(parts.scheme.lower())
    except ValueError:
        return None
