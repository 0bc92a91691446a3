"""What `flowspec serve`, `flowspec chat` and `flowspec run` do, as library functions.

Each compiles its specs, applies the offline default (`flowspec.server.offline`), runs, and
returns an exit code: 0 done, 1 an invalid spec, 2 a usage or I/O problem.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from flowspec import limits
from flowspec.errors import FlowspecError, SpecInvalid
from flowspec.server.guard import state_dir, write_token
from flowspec.spec.compiled import CompiledGraph

log = logging.getLogger("flowspec.server")

EXIT_OK, EXIT_INVALID, EXIT_USAGE = 0, 1, 2


def load_graphs(paths: Sequence[str], err: TextIO) -> list[CompiledGraph] | None:
    """Compile every spec; print every problem and return None if any is invalid."""
    from flowspec.spec.compile import compile_file

    graphs: list[CompiledGraph] = []
    failed = False
    for path in paths:
        try:
            report = compile_file(path)
        except OSError as exc:
            print(f"cannot read {path}: {exc.strerror}", file=err)
            failed = True
            continue
        try:
            graphs.append(report.raise_for_errors())
        except SpecInvalid as exc:
            print(exc, file=err)
            failed = True
    return None if failed else graphs


def _stop_event() -> tuple[asyncio.Event, Callable[[], None]]:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    signals = (signal.SIGINT, signal.SIGTERM)
    for signum in signals:
        loop.add_signal_handler(signum, stop.set)

    def restore() -> None:
        for signum in signals:
            loop.remove_signal_handler(signum)

    return stop, restore


# -- serve ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AdminOptions:
    """How `serve` opens the admin API. `token` None: make one for this start and write it to
    the token file `flowspec patch --server` reads (`flowspec.server.guard.token_path`)."""

    enabled: bool = True
    token: str | None = None
    token_source: str = ""
    """Where a given token came from, for the banner (`FLOWSPEC_ADMIN_TOKEN`, a file)."""
    allow_code: bool = False


async def serve(graphs: Sequence[CompiledGraph], *, host: str = "127.0.0.1", port: int = 8080,
                drain_timeout: float = 30.0, reuse_port: bool = False,
                env: Mapping[str, str] | None = None, out: TextIO = sys.stdout,
                admin: AdminOptions | None = None, watch: bool = True,
                allowed_hosts: Sequence[str] = (), max_sessions: int = limits.MAX_SESSIONS,
                header_timeout: float = limits.HEADER_TIMEOUT_S) -> int:
    """Serve until SIGINT/SIGTERM, then drain: stop accepting (`/healthz` answers 503 while
    the listener stays open), let calls finish up to `drain_timeout` seconds, end the rest.
    Spec files are watched (a save reloads) and the admin API (`flowspec.server.admin`)
    changes the running specs."""
    from aiohttp import web

    from flowspec.reload.source import FileSource
    from flowspec.server.admin import attach
    from flowspec.server.app import Server
    from flowspec.server.guard import HostPolicy
    from flowspec.server.logging import REDACTOR
    from flowspec.server.offline import banner, offline_graphs, repoint

    environ = os.environ if env is None else env
    options = admin or AdminOptions()
    texts = await asyncio.to_thread(_sources, graphs)
    stop, restore = _stop_event()
    token_file: Path | None = None
    try:
        async with offline_graphs(graphs, environ) as offline:
            hosts = HostPolicy(host, [*allowed_hosts, *_public_hosts(graphs)])
            server = Server(offline.graphs, max_sessions=max_sessions, hosts=hosts)
            served = [(g, t) for g, t in zip(graphs, texts, strict=True) if t is not None]
            state = state_dir(environ)
            sources = {g.name: FileSource(g.source, state=state) for g, _t in served}
            admin_api = attach(server, served, lambda graph: repoint(offline, graph, environ),
                               token=options.token, env=environ, allow_code=options.allow_code,
                               api=options.enabled, redactor=REDACTOR, sources=sources)
            for reloader in admin_api.reloaders.values():
                await reloader.open()
            runner = web.AppRunner(server.app, access_log=None, handle_signals=False,
                                   keepalive_timeout=header_timeout)
            await runner.setup()
            site = web.TCPSite(runner, host, port, reuse_port=reuse_port or None)
            try:
                await site.start()
            except OSError as exc:
                await runner.cleanup()
                print(f"flowspec serve: cannot serve on {host}:{port}: {exc.strerror}",
                      file=sys.stderr)
                return EXIT_USAGE
            bound = runner.addresses[0][1] if runner.addresses else port
            notice = banner(offline)
            if notice:
                print(notice, file=out)
            for graph in server.current.values():
                print(f"serving {graph.name} v{graph.version} ({graph.source})", file=out)
            print(f"listening on http://{host}:{bound}/  (/healthz, /metrics)", file=out)
            if options.enabled and options.token is None:
                token_file = await asyncio.to_thread(write_token, admin_api.token, bound,
                                                     environ)
            print(_admin_banner(options, admin_api.token, f"http://{host}:{bound}",
                                token_file), file=out, flush=True)
            unwatch = asyncio.Event()
            async with asyncio.TaskGroup() as tg:
                for reloader in admin_api.reloaders.values() if watch else ():
                    tg.create_task(reloader.follow(unwatch),
                                   name=f"flowspec:watch:{reloader.store.source}")
                await stop.wait()
                unwatch.set()
            print("shutting down: finishing calls", file=out, flush=True)
            await server.drain(drain_timeout)
            await site.stop()
            await runner.cleanup()
    finally:
        restore()
        if token_file is not None:
            with contextlib.suppress(OSError):
                token_file.unlink()
    return EXIT_OK


def _admin_banner(options: AdminOptions, token: str, base: str, token_file: Path | None) -> str:
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


def _sources(graphs: Sequence[CompiledGraph]) -> list[str | None]:
    """Each spec's text as written (None when it did not come from a readable file)."""
    texts: list[str | None] = []
    for graph in graphs:
        try:
            texts.append(Path(graph.source).read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError):
            texts.append(None)
    return texts


def serve_workers(argv: Sequence[str], workers: int, admin: AdminOptions | None = None) -> int:
    """Run `workers` processes of `flowspec serve` sharing one port (SO_REUSEPORT; the kernel
    spreads connections), forwarding SIGINT/SIGTERM to them and waiting for them all. They
    share one admin token, handed to them in the environment (never on a command line)."""
    command = [sys.executable, "-m", "flowspec.cli", "serve", *argv, "--workers", "1",
               "--reuse-port"]
    options = admin or AdminOptions()
    env = dict(os.environ)
    token_file: Path | None = None
    if options.enabled:
        if options.token is None:
            from flowspec.server.guard import new_token

            token = new_token()
            port = int(argv[list(argv).index("--port") + 1])
            token_file = write_token(token, port)
            print(f"admin token: {token}\n  (for this start only; also in {token_file}, which "
                  "`flowspec patch --server` reads)", flush=True)
        else:
            token = options.token
        env["FLOWSPEC_ADMIN_TOKEN"] = token
    children = [subprocess.Popen(command, env=env) for _ in range(workers)]

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
        if token_file is not None:
            with contextlib.suppress(OSError):
                token_file.unlink()
    return max(codes, key=abs)


# -- chat and run: one session with a local transport ----------------------------------------


async def _one_session(graph: CompiledGraph, factory: Callable[..., object],
                       env: Mapping[str, str] | None, pace: float, out: TextIO) -> int:
    from flowspec.runtime.bus import Bus
    from flowspec.runtime.node import NodeFactory
    from flowspec.runtime.registry import DEFAULT_REGISTRY
    from flowspec.runtime.session import Session
    from flowspec.server.app import with_entry
    from flowspec.server.offline import banner, offline_graphs

    stop, restore = _stop_event()
    try:
        async with offline_graphs([graph], os.environ if env is None else env,
                                  pace=pace) as offline:
            notice = banner(offline)
            if notice:
                print(notice, file=sys.stderr, flush=True)
            [served] = offline.graphs
            entry: NodeFactory = factory  # type: ignore[assignment]
            session = Session(served, registry=with_entry(DEFAULT_REGISTRY, served, entry),
                              bus=Bus())
            try:
                async with session:
                    waiting = asyncio.ensure_future(session.wait())
                    stopping = asyncio.ensure_future(stop.wait())
                    try:
                        await asyncio.wait({waiting, stopping},
                                           return_when=asyncio.FIRST_COMPLETED)
                    finally:
                        waiting.cancel()
                        stopping.cancel()
                        await asyncio.gather(waiting, stopping, return_exceptions=True)
            except FlowspecError as exc:
                print(f"flowspec: {exc}", file=sys.stderr)
                return EXIT_USAGE
    finally:
        restore()
    return EXIT_OK


async def chat(graph: CompiledGraph, *, env: Mapping[str, str] | None = None) -> int:
    """A console conversation with `graph`, its entry transport replaced by the console."""
    import functools

    from flowspec.transports.console import ConsoleIO, ConsoleTransport

    io = await ConsoleIO.stdio()
    factory = functools.partial(ConsoleTransport, io=io)
    return await _one_session(graph, factory, env, 0.0, sys.stdout)


async def run(graph: CompiledGraph, *, input_path: str | None, output_path: str | None,
              env: Mapping[str, str] | None = None, out: TextIO = sys.stdout) -> int:
    """One batch session: `input_path` in, the bot's audio to `output_path`, transcripts to
    `out`. The entry transport is replaced by the WAV transport (keeping its audio format)."""
    import functools

    from flowspec.transports.wav import WavTransport

    factory = functools.partial(WavTransport, input_path=input_path, output_path=output_path,
                                echo=out)
    code = await _one_session(graph, factory, env, 0.0, out)
    if code == EXIT_OK and output_path:
        print(f"wrote {output_path}", file=out)
    return code
