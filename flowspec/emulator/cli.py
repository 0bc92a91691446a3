"""`flowspec emulate`: serve the emulator until SIGINT/SIGTERM."""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys

from flowspec.emulator.script import Script, load_script
from flowspec.emulator.server import Emulator
from flowspec.errors import SpecInvalid


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=0, help="port to bind (default: a free one)")
    parser.add_argument("--script", metavar="FILE", help="YAML or JSON reply script")
    parser.add_argument(
        "--pace",
        type=float,
        default=1.0,
        help="wall seconds per second of reply audio: 1 real time (default), 0 no waiting",
    )
    parser.add_argument(
        "--retired-beta",
        action="store_true",
        help="answer Realtime beta connections as OpenAI does now (error, close code 4000)",
    )


def run(args: argparse.Namespace) -> int:
    try:
        script = load_script(args.script) if args.script else None
    except SpecInvalid as exc:
        print(exc, file=sys.stderr)
        return 2
    if args.pace < 0:
        print("--pace must not be negative.", file=sys.stderr)
        return 2
    return asyncio.run(_serve(args, script))


async def _serve(args: argparse.Namespace, script: Script | None) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    try:
        async with Emulator.start(
            host=args.host,
            port=args.port,
            pace=args.pace,
            retired_beta=args.retired_beta,
            script=script,
            keep_records=False,  # it serves for as long as it runs: records would only grow
        ) as emulator:
            print(f"OpenAI emulator listening on {emulator.base_url}", flush=True)
            print(f"  base_url:           {emulator.http_base_url}", flush=True)
            print(f"  websocket_base_url: {emulator.ws_base_url}", flush=True)
            await stop.wait()
    except OSError as exc:
        print(f"Cannot serve on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 1
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)
    return 0


def main(argv: list[str] | None = None) -> int:
    """Stand-alone entry (`python -m flowspec.emulator.cli`) until the main CLI wires it in."""
    parser = argparse.ArgumentParser(prog="flowspec emulate", description=__doc__)
    configure(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
