"""`flowspec serve` as a library function: one process, or a parent and its worker processes.

One process serves every spec on one port, with hot reload (each spec's truth is its file, or a
store shared by replicas: `flowspec.reload.source`) and the admin API, until SIGINT/SIGTERM;
then it drains. With `--workers N` a parent process starts N workers on one port
(SO_REUSEPORT: the kernel spreads connections) and does, once, what must happen once: the
banner, the admin token, and the built-in emulator when a spec uses it. Workers follow the same
truth, so every one of them serves every change.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
import signal
import ssl
import subprocess
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from flowspec import limits
from flowspec.reload.service import Reloader
from flowspec.reload.source import FileSource, SourceError, SpecSource
from flowspec.server.commands import EXIT_OK, EXIT_USAGE, stop_event
from flowspec.server.guard import new_token, state_dir, write_token
from flowspec.spec.compiled import CompiledGraph

log = logging.getLogger("flowspec.server")

EMULATOR_URL_ENV = "FLOWSPEC_EMULATOR_URL"
"""Set by the parent of `--workers`: the one emulator every worker talks to."""


@dataclass(frozen=True, slots=True)
class AdminOptions:
    """How `serve` opens the admin API. `token` None: make one for this start and write it to
    the token file `flowspec patch --server` reads (`flowspec.server.guard.token_path`)."""

    enabled: bool = True
    token: str | None = None
    token_source: str = ""
    """Where a given token came from, for the banner (`FLOWSPEC_ADMIN_TOKEN`, a file)."""
    allow_code: bool = False


@dataclass(frozen=True, slots=True)
class ServeOptions:
    host: str = "127.0.0.1"
    port: int = 8080
    drain_timeout: float = 30.0
    admin: AdminOptions = field(default_factory=AdminOptions)
    watch: bool = True
    allowed_hosts: tuple[str, ...] = ()
    max_sessions: int = limits.MAX_SESSIONS
    header_timeout: float = limits.HEADER_TIMEOUT_S
    store: str | None = None
    """`redis://HOST:PORT/DB`: the specs' truth is there, shared by replicas."""
    reuse_port: bool = False
    tls_cert: str | None = None
    """PEM certificate chain (with `tls_key`): serve https and wss, as a browser needs for the
    microphone anywhere but localhost."""
    tls_key: str | None = None
    quiet: bool = False
    """A worker of `--workers`: its parent printed the banner."""

    def worker_arguments(self) -> list[str]:
        """The command-line options a worker gets (secrets go through the environment)."""
        return ["--host", self.host, "--port", str(self.port), "--drain-timeout",
                str(self.drain_timeout), "--max-sessions", str(self.max_sessions),
                "--header-timeout", str(self.header_timeout),
                *(["--no-watch"] if not self.watch else []),
                *(["--no-admin"] if not self.admin.enabled else []),
                *(["--admin-allow-code"] if self.admin.allow_code else []),
                *(["--store", self.store] if self.store else []),
                *(["--tls-cert", self.tls_cert, "--tls-key", self.tls_key]
                  if self.tls_cert and self.tls_key else []),
                *(a for host in self.allowed_hosts for a in ("--allowed-host", host))]


async def serve(graphs: Sequence[CompiledGraph], options: ServeOptions | None = None, *,
                env: Mapping[str, str] | None = None, out: TextIO = sys.stdout) -> int:
    """Serve until SIGINT/SIGTERM, then drain: stop accepting (`/healthz` answers 503 while
    the listener stays open), let calls finish up to `drain_timeout` seconds, end the rest."""
    from aiohttp import web

    from flowspec.server.admin import attach
    from flowspec.server.app import Server
    from flowspec.server.guard import HostPolicy
    from flowspec.server.logging import REDACTOR
    from flowspec.server.offline import banner, offline_graphs, repoint

    opts = options or ServeOptions()
    environ = os.environ if env is None else env
    texts = await asyncio.to_thread(_texts, graphs)
    stop, restore = stop_event()
    token_file: Path | None = None
    try:
        async with offline_graphs(graphs, environ, url=environ.get(EMULATOR_URL_ENV)) \
                as offline:
            hosts = HostPolicy(opts.host, [*opts.allowed_hosts, *_public_hosts(graphs)])
            server = Server(offline.graphs, max_sessions=opts.max_sessions, hosts=hosts)
            served = [(g, t) for g, t in zip(graphs, texts, strict=True) if t is not None]
            state = state_dir(environ)
            files = {g.name: FileSource(g.source, state=state) for g, _t in served}
            sources = await _stores(opts.store, files) if opts.store else dict(files)
            server.sources.update(sources)
            admin = attach(server, served, lambda graph: repoint(offline, graph, environ),
                           token=opts.admin.token, env=environ,
                           allow_code=opts.admin.allow_code, api=opts.admin.enabled,
                           redactor=REDACTOR, sources=sources)
            for reloader in admin.reloaders.values():
                await reloader.open()
            runner = web.AppRunner(server.app, access_log=None, handle_signals=False,
                                   keepalive_timeout=opts.header_timeout)
            await runner.setup()
            site = web.TCPSite(runner, opts.host, opts.port, reuse_port=opts.reuse_port or None,
                               ssl_context=tls_context(opts.tls_cert, opts.tls_key))
            try:
                await site.start()
            except OSError as exc:
                await runner.cleanup()
                print(f"flowspec serve: cannot serve on {opts.host}:{opts.port}: "
                      f"{exc.strerror}", file=sys.stderr)
                return EXIT_USAGE
            bound = runner.addresses[0][1] if runner.addresses else opts.port
            if not opts.quiet:
                if opts.admin.enabled and opts.admin.token is None:
                    token_file = await asyncio.to_thread(write_token, admin.token, bound,
                                                         environ)
                scheme = "https" if opts.tls_cert else "http"
                lines = [banner(offline), *serving_lines(server.current.values()),
                         listening_line(opts.host, bound, scheme),
                         admin_banner(opts.admin, admin.token, f"{scheme}://{opts.host}:{bound}",
                                      token_file)]
                print("\n".join(line for line in lines if line), file=out, flush=True)
            unwatch = asyncio.Event()
            async with asyncio.TaskGroup() as tg:
                for name, reloader in admin.reloaders.items():
                    if opts.watch or opts.store:  # a store's changes are followed regardless
                        tg.create_task(reloader.follow(unwatch),
                                       name=f"flowspec:follow:{name}")
                    if opts.watch and opts.store:
                        tg.create_task(_propose_file_edits(files[name], reloader, unwatch),
                                       name=f"flowspec:watch:{name}")
                await stop.wait()
                unwatch.set()
            if not opts.quiet:
                print("shutting down: finishing calls", file=out, flush=True)
            await server.drain(opts.drain_timeout)
            await site.stop()
            await runner.cleanup()
            for source in sources.values():
                await source.close()
    finally:
        restore()
        if token_file is not None:
            with contextlib.suppress(OSError):
                token_file.unlink()
    return EXIT_OK


async def _stores(url: str, files: Mapping[str, FileSource]) -> dict[str, SpecSource]:
    """A Redis source per spec, seeded (when the store holds none) with its file."""
    from flowspec.reload.redis_source import RedisSource

    stores: dict[str, SpecSource] = {}
    for name, file in files.items():
        stores[name] = RedisSource(url, name, await file.current())
    return stores


async def _propose_file_edits(file: FileSource, reloader: Reloader,
                              stop: asyncio.Event) -> None:
    """With a store, an edit of the spec file (a new ConfigMap) becomes the store's next
    version, as an admin change would."""
    async for revision in file.changes(stop):
        try:
            result = await reloader.replace(revision.text, origin=str(file.path))
        except Exception as exc:  # supervision boundary: a file never stops the server
            log.error("%s could not be applied", file.path, exc_info=exc)
            continue
        if not result.ok:
            log.warning("%s: not applied (%s)", file.path, result.body.get("message"))


def serving_lines(graphs: Iterable[CompiledGraph]) -> list[str]:
    return [f"serving {g.name} v{g.version} ({g.source})" for g in graphs]


def listening_line(host: str, port: int, scheme: str = "http") -> str:
    return f"listening on {scheme}://{host}:{port}/  (/healthz, /metrics)"


def tls_context(cert: str | None, key: str | None) -> ssl.SSLContext | None:
    """A server TLS context from PEM files; None without them. Raises OSError or ssl.SSLError
    when they cannot be used (a usage error for the command line)."""
    if not cert or not key:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    return context


def admin_banner(options: AdminOptions, token: str, base: str, token_file: Path | None) -> str:
    if not options.enabled:
        return "admin API: off (--no-admin)"
    code = " (may change code-bearing fields: --admin-allow-code)" if options.allow_code else ""
    if token_file is None:
        return f"admin API: {base}/admin/spec{code}, token from {options.token_source}"
    # Shown once, like a notebook server's token: whoever can read this output is the operator.
    return (f"admin API: {base}/admin/spec{code}\n"
            f"  token: {token}\n"
            f"  (for this start only; also in {token_file}, which `flowspec patch --server` "
            "reads)")


def _public_hosts(graphs: Sequence[CompiledGraph]) -> list[str]:
    """Host names a Twilio transport's `public_url` names: Twilio calls in under them."""
    from urllib.parse import urlsplit

    from flowspec.spec.models.transports import TwilioTransportSpec

    hosts: list[str] = []
    for graph in graphs:
        for spec in graph.nodes.values():
            if isinstance(spec, TwilioTransportSpec) and spec.public_url:
                name = urlsplit(spec.public_url).hostname
                if name:
                    hosts.append(name)
    return hosts


def _texts(graphs: Sequence[CompiledGraph]) -> list[str | None]:
    """Each spec's text as written (None when it did not come from a readable file)."""
    texts: list[str | None] = []
    for graph in graphs:
        try:
            texts.append(Path(graph.source).read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError):
            texts.append(None)
    return texts


# -- --workers -----------------------------------------------------------------------------------


def serve_workers(graphs: Sequence[CompiledGraph], options: ServeOptions, specs: Sequence[str],
                  workers: int, *, out: TextIO = sys.stdout) -> int:
    """Run `workers` worker processes of `flowspec serve` on one port, forwarding
    SIGINT/SIGTERM to them and waiting for them all. The token and the emulator's address
    reach them in the environment, never on a command line."""
    from flowspec.server.offline import Offline, banner, emulated_nodes

    env = dict(os.environ)
    token_file: Path | None = None
    emulator: subprocess.Popen[str] | None = None
    token = options.admin.token
    try:
        wanted = [(g.name, n) for g in graphs for n in emulated_nodes(g, env)]
        if wanted and EMULATOR_URL_ENV not in env:
            emulator, env[EMULATOR_URL_ENV] = _start_emulator()
        if options.admin.enabled:
            if token is None:
                token = new_token()
                token_file = write_token(token, options.port, env)
            env["FLOWSPEC_ADMIN_TOKEN"] = token
        command = [sys.executable, "-m", "flowspec.cli", "serve", *specs,
                   *options.worker_arguments(), "--workers", "1", "--reuse-port", "--worker"]
        children = [subprocess.Popen(command, env=env) for _ in range(workers)]
        state = state_dir(env)
        versioned = [_renumbered(g, FileSource(g.source, state=state)) for g in graphs]
        offline = Offline(tuple(graphs), tuple(wanted), env.get(EMULATOR_URL_ENV))
        lines = [banner(offline), *serving_lines(versioned),
                 listening_line(options.host, options.port,
                                "https" if options.tls_cert else "http")
                 + f"  ({workers} workers)",
                 admin_banner(options.admin, token or "",
                              f"{'https' if options.tls_cert else 'http'}://{options.host}:"
                              f"{options.port}", token_file)]
        print("\n".join(line for line in lines if line), file=out, flush=True)
        return _wait(children)
    finally:
        if emulator is not None:
            emulator.terminate()
            emulator.wait(timeout=30)
        if token_file is not None:
            with contextlib.suppress(OSError):
                token_file.unlink()


def _renumbered(graph: CompiledGraph, source: FileSource) -> CompiledGraph:
    """`graph` with the number its file's version log gives it (what the workers will say)."""
    try:
        revision = source.read_revision()
    except SourceError:
        return graph
    return dataclasses.replace(graph, version=revision.version, _out={}, _in={})


def _start_emulator() -> tuple[subprocess.Popen[str], str]:
    """The one emulator the workers share, on a free loopback port; its base URL."""
    process = subprocess.Popen([sys.executable, "-m", "flowspec.cli", "emulate", "--host",
                                "127.0.0.1"], stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    line = process.stdout.readline()  # "OpenAI emulator listening on http://127.0.0.1:PORT"
    if "listening on " not in line:
        process.terminate()
        raise OSError("the built-in emulator did not start")
    return process, line.rsplit(" ", 1)[1].strip()


def _wait(children: Sequence[subprocess.Popen[bytes]]) -> int:
    def forward(signum: int, _frame: object) -> None:
        for child in children:
            if child.poll() is None:
                child.send_signal(signum)

    previous = {s: signal.signal(s, forward) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        codes = [child.wait() for child in children]
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    return max(codes, key=abs)
