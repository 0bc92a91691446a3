"""What `flowspec chat` and `flowspec run` do, as library functions, and what they share with
`flowspec serve` (`flowspec.server.serving`): loading the specs and stopping on a signal.

Each compiles its specs, applies the offline default (`flowspec.server.offline`), runs, and
returns an exit code: 0 done, 1 an invalid spec, 2 a usage or I/O problem.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, TextIO

from flowspec.errors import FlowspecError, SpecInvalid
from flowspec.spec.compiled import CompiledGraph

if TYPE_CHECKING:
    from flowspec.runtime.registry import Registry

log = logging.getLogger("flowspec.server")

EXIT_OK, EXIT_INVALID, EXIT_USAGE = 0, 1, 2


def load_graphs(paths: Sequence[str], err: TextIO,
                command: str = "serve") -> list[CompiledGraph] | int:
    """Compile every spec, or print every problem and return the exit code: 2 when a file
    cannot be read, 1 when a spec is invalid."""
    from flowspec.spec.compile import compile_file

    graphs: list[CompiledGraph] = []
    code = EXIT_OK
    for path in paths:
        try:
            report = compile_file(path)
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            print(f"flowspec {command}: cannot read {path}: {reason}", file=err)
            code = EXIT_USAGE
            continue
        try:
            graphs.append(report.raise_for_errors())
        except SpecInvalid as exc:
            print(exc, file=err)
            code = max(code, EXIT_INVALID)
    return graphs if code == EXIT_OK else code


def stop_event() -> tuple[asyncio.Event, Callable[[], None]]:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    signals = (signal.SIGINT, signal.SIGTERM)
    for signum in signals:
        loop.add_signal_handler(signum, stop.set)

    def restore() -> None:
        for signum in signals:
            loop.remove_signal_handler(signum)

    return stop, restore


# -- chat and run: one session with a local transport ----------------------------------------


@dataclass(slots=True)
class Outcome:
    """How a local session went: its exit code, why it ended, and its entry node instance."""

    code: int
    reason: str = ""
    entry: object | None = None


async def one_session(graph: CompiledGraph, factory: Callable[..., object],
                      env: Mapping[str, str] | None, pace: float, command: str,
                      registry: Registry | None = None,
                      variables: Mapping[str, str] | None = None) -> Outcome:
    """One session of `graph` with its entry transport built by `factory` (over `registry`,
    default every node type), with the call's `variables` (`--var`), until it ends or
    SIGINT/SIGTERM."""
    from flowspec.runtime.bus import Bus
    from flowspec.runtime.node import NodeFactory
    from flowspec.runtime.registry import DEFAULT_REGISTRY
    from flowspec.runtime.session import Session
    from flowspec.server.app import with_entry
    from flowspec.server.offline import banner, offline_graphs

    stop, restore = stop_event()
    try:
        async with offline_graphs([graph], os.environ if env is None else env,
                                  pace=pace) as offline:
            notice = banner(offline)
            if notice:
                print(notice, file=sys.stderr, flush=True)
            [served] = offline.graphs
            entry: NodeFactory = factory  # type: ignore[assignment]
            session = Session(served, registry=with_entry(registry or DEFAULT_REGISTRY, served,
                                                          entry), bus=Bus(),
                              variables=variables)
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
                print(f"flowspec {command}: {exc}", file=sys.stderr)
                return Outcome(EXIT_INVALID, str(exc))
            node = session.node(served.entry) if served.entry else None
            return Outcome(EXIT_OK, session.close_reason, node)
    finally:
        restore()


async def chat(graph: CompiledGraph, *, env: Mapping[str, str] | None = None,
               variables: Mapping[str, str] | None = None) -> int:
    """A console conversation with `graph`, its entry transport replaced by the console."""
    import functools

    from flowspec.transports.console import ConsoleIO, ConsoleTransport

    io = await ConsoleIO.stdio()
    factory = functools.partial(ConsoleTransport, io=io)
    outcome = await one_session(graph, factory, env, 0.0, "chat", variables=variables)
    if outcome.code == EXIT_OK and _failed(outcome.reason):
        print(f"flowspec chat: {outcome.reason}", file=sys.stderr)
        return EXIT_INVALID
    console = outcome.entry
    if outcome.code == EXIT_OK and isinstance(console, ConsoleTransport) and console.errors \
            and not console.answers:
        # Every turn failed (a model that cannot be reached, say): not a conversation.
        print("flowspec chat: the bot never answered (the errors are above)", file=sys.stderr)
        return EXIT_INVALID
    return outcome.code


async def run(graph: CompiledGraph, *, input_path: str | None, output_path: str | None,
              env: Mapping[str, str] | None = None, out: TextIO = sys.stdout,
              variables: Mapping[str, str] | None = None) -> int:
    """One batch session: `input_path` in, the bot's audio to `output_path`, transcripts to
    `out`. The entry transport is replaced by the WAV transport (keeping its audio format).
    0 when the bot answered with audio (written to `output_path`); 1 when it did not (the
    model could not be reached, or it answers in text only), with the reason; nothing is
    written then."""
    import functools

    from flowspec.transports.wav import WavTransport

    factory = functools.partial(WavTransport, input_path=input_path, output_path=output_path,
                                echo=out)
    outcome = await one_session(graph, factory, env, 0.0, "run", variables=variables)
    if outcome.code != EXIT_OK:
        return outcome.code
    wav = outcome.entry
    assert isinstance(wav, WavTransport)
    if not wav.audio_bytes:
        if _failed(outcome.reason):
            why = "the model could not be reached (see above)"
        elif wav.answered:
            why = "it answered in text only: its model's output has no audio"
        else:
            why = f"no answer ({outcome.reason or 'the session ended'})"
        print(f"flowspec run: the bot gave no spoken answer: {why}; nothing written",
              file=sys.stderr)
        return EXIT_INVALID
    if output_path:
        print(f"wrote {output_path}", file=out)
    return EXIT_OK


def call_variables(graph: CompiledGraph, assignments: Sequence[str],
                   command: str) -> dict[str, str] | int:
    """The `--var NAME=VALUE` options as the call's values, checked against the spec's
    `variables:` now (a bad one is a usage error, before anything starts), or an exit code."""
    from flowspec.conversation.variables import (
        CallFacts,
        VariableRefused,
        parse_assignments,
        resolve,
    )

    try:
        values = parse_assignments(list(assignments))
        resolve(graph.spec.variables, values, CallFacts(session_id=""))
    except VariableRefused as exc:
        print(f"flowspec {command}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    return values


def _failed(reason: str) -> bool:
    """A session end reason that reports a failure rather than an ordinary end."""
    return "could not" in reason or "failed" in reason
