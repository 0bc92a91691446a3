"""`flowspec record SPEC --out call.jsonl [--in question.wav]`: one call, its provider traffic
written as it happens (`flowspec.scenario.record`), so that a call that went wrong becomes a
scenario's `replay:`. The caller is the WAV given (as `flowspec run`), or the terminal (as
`flowspec chat`). Exit codes as theirs; 2 when the recording cannot be written."""

from __future__ import annotations

import argparse
import asyncio
import functools
import os
import sys
from pathlib import Path

EXIT_OK, EXIT_INVALID, EXIT_USAGE = 0, 1, 2


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("spec", metavar="SPEC")
    parser.add_argument("--out", required=True, metavar="FILE",
                        help="the recording to write (JSON Lines)")
    parser.add_argument("--in", dest="input", metavar="WAV", help="the caller's audio (else: "
                        "type in the terminal, as `flowspec chat`)")


def run(args: argparse.Namespace) -> int:
    from flowspec.audio import read_wav
    from flowspec.redact import Redactor
    from flowspec.scenario.record import Recording
    from flowspec.server.commands import load_graphs
    from flowspec.server.logging import configure_cli_logging
    from flowspec.spec.load import read

    graphs = load_graphs([args.spec], sys.stderr, "record")
    if isinstance(graphs, int):
        return graphs
    graph = graphs[0]
    if args.input is not None:
        try:
            read_wav(args.input)
        except ValueError as exc:
            print(f"flowspec record: {exc}", file=sys.stderr)
            return EXIT_USAGE
    try:
        sink = Path(args.out).open("w", encoding="utf-8")
    except OSError as exc:
        print(f"flowspec record: cannot write {args.out}: {exc.strerror}", file=sys.stderr)
        return EXIT_USAGE
    configure_cli_logging("record")
    with sink:
        recording = Recording(spec=graph.name, sink=sink,
                              redactor=Redactor.of([read(args.spec).data], os.environ))
        code = asyncio.run(_record(graph, recording, args.input))
    print(f"wrote {args.out} ({len(recording.entries)} messages)", file=sys.stderr)
    return code


async def _record(graph: object, recording: object, wav: str | None) -> int:
    from flowspec.scenario.record import Recording
    from flowspec.server.commands import EXIT_OK as DONE
    from flowspec.server.commands import one_session
    from flowspec.spec.compiled import CompiledGraph

    assert isinstance(graph, CompiledGraph) and isinstance(recording, Recording)
    if wav is not None:
        from flowspec.transports.wav import WavTransport

        factory = functools.partial(WavTransport, input_path=wav, output_path=None,
                                    echo=sys.stdout)
        outcome = await one_session(graph, factory, None, 0.0, "record", recording.registry())
        return outcome.code
    from flowspec.transports.console import ConsoleIO, ConsoleTransport

    io = await ConsoleIO.stdio()
    outcome = await one_session(graph, functools.partial(ConsoleTransport, io=io), None, 0.0,
                                "record", recording.registry())
    return outcome.code if outcome.code != DONE else EXIT_OK
