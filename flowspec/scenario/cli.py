"""`flowspec test` and `flowspec record`: argument parsing, then the library.

    flowspec test [FILES|DIRS ...] [-k NAME] [--junit-xml FILE] [--format json] [--live]
    flowspec record SPEC --out call.jsonl [--in question.wav]

`test` exits 0 when every scenario passed, 1 when one failed or a test file is invalid (located
errors), 2 for usage and I/O problems. `record` runs one call (the WAV as the caller, or the
terminal's typed text) and writes its provider traffic; exit codes as `flowspec run`.
"""

from __future__ import annotations

import argparse
import asyncio
import sys

EXIT_OK, EXIT_INVALID, EXIT_USAGE = 0, 1, 2


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("paths", nargs="*", metavar="FILE|DIR", default=["."],
                        help="test files (NAME.test.yaml) or directories to search (default: .)")
    parser.add_argument("-k", dest="keyword", metavar="NAME",
                        help="only the scenarios whose name contains NAME")
    parser.add_argument("--junit-xml", metavar="FILE", help="also write a JUnit XML report")
    parser.add_argument("--format", choices=["text", "json"], default="text")
    parser.add_argument("--live", action="store_true", help="against the configured provider "
                        "(OPENAI_API_KEY): scripted model rules are skipped, and what is "
                        "expected of the model is checked against the real one")
    parser.add_argument("--parallel", type=int, default=8, metavar="N",
                        help="scenarios run at once (default 8)")
    parser.add_argument("--record", metavar="DIR", help="write each scenario's provider "
                        "traffic to DIR (with --live: real calls, to replay later)")


def run(args: argparse.Namespace) -> int:
    from flowspec.errors import Diagnostic, SpecInvalid
    from flowspec.scenario import report
    from flowspec.scenario.load import find_test_files, load_test_file
    from flowspec.scenario.runner import ScenarioResult, run_file
    from flowspec.server.logging import configure_cli_logging

    paths = find_test_files(args.paths)
    if not paths:
        print(f"flowspec test: no test files (*.test.yaml) in {' '.join(args.paths)}",
              file=sys.stderr)
        return EXIT_USAGE
    if args.parallel < 1:
        print("flowspec test: --parallel must be at least 1", file=sys.stderr)
        return EXIT_USAGE
    record = None
    if args.record:
        from pathlib import Path

        record = Path(args.record)
        try:
            record.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            print(f"flowspec test: cannot write to {args.record}: {exc.strerror}",
                  file=sys.stderr)
            return EXIT_USAGE
    configure_cli_logging("test")
    problems: list[Diagnostic] = []
    results: list[ScenarioResult] = []

    async def everything() -> None:
        for path in paths:
            try:
                loaded = load_test_file(path)
            except SpecInvalid as exc:
                problems.extend(exc.diagnostics)
                continue
            results.extend(await run_file(loaded, keyword=args.keyword, live=args.live,
                                          parallel=args.parallel, record=record))

    for path in paths:
        if not path.is_file():
            print(f"flowspec test: cannot read {path}: no such file", file=sys.stderr)
            return EXIT_USAGE
    asyncio.run(everything())
    if args.format == "json":
        report.dump_json(results, problems, sys.stdout)
    else:
        report.print_text(results, problems, sys.stdout)
    if args.junit_xml:
        try:
            report.write_junit(args.junit_xml, results, problems)
        except OSError as exc:
            print(f"flowspec test: cannot write {args.junit_xml}: {exc.strerror}",
                  file=sys.stderr)
            return EXIT_USAGE
    if problems or not all(r.ok for r in results):
        return EXIT_INVALID
    if not results:
        print(f"flowspec test: no scenario matches -k {args.keyword!r}", file=sys.stderr)
        return EXIT_USAGE
    return EXIT_OK
