"""The `flowspec` command line: parses arguments and calls the library, nothing more.

Exit codes: 0 success, 1 an invalid spec (or a stale schema with --check), 2 usage or I/O errors.
Imports are lazy so `flowspec validate` starts fast.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

if TYPE_CHECKING:
    from flowspec.spec.compile import Report

EXIT_OK, EXIT_INVALID, EXIT_USAGE = 0, 1, 2
EXIT_BROKEN_PIPE = 141
"""What a shell reports for a command ended by SIGPIPE (128 + 13), the code `| head` expects."""


def _print_report(report: object, strict: bool, out: TextIO) -> bool:
    from flowspec.errors import Severity
    from flowspec.spec.compile import Report

    assert isinstance(report, Report)
    failed = bool(report.errors) or (strict and bool(report.warnings))
    for diagnostic in report.diagnostics:
        print(diagnostic, file=out)
    errors, warnings = len(report.errors), len(report.warnings)
    notes = sum(1 for d in report.diagnostics if d.severity is Severity.INFO)
    counts = [f"{errors} error{'s' * (errors != 1)}", f"{warnings} warning{'s' * (warnings != 1)}"]
    if notes:
        counts.append(f"{notes} note{'s' * (notes != 1)}")
    verdict = "invalid" if failed else "ok"
    print(f"{report.source}: {verdict} ({', '.join(counts)})", file=out)
    return failed


def cmd_validate(args: argparse.Namespace) -> int:
    from flowspec.errors import Diagnostic
    from flowspec.spec.compile import Report, compile_file

    reports: list[Report] = []
    io_failed = False
    for name in args.specs:
        try:
            reports.append(_validate_test_file(name) if _is_test_file(name)
                           else compile_file(name))
        except (OSError, UnicodeDecodeError) as exc:
            io_failed = True
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            reports.append(Report(source=name, diagnostics=[Diagnostic(
                code="io.read", message=f"cannot read the file: {reason}", source=name)]))
    failed = False
    if args.format == "json":
        files = []
        for report in reports:
            bad = bool(report.errors) or (args.strict and bool(report.warnings))
            failed |= bad
            files.append({"source": report.source, "ok": not bad,
                          "diagnostics": [d.to_json() for d in report.diagnostics]})
        json.dump({"ok": not failed, "files": files}, sys.stdout, indent=2)
        print()
    else:
        for report in reports:
            failed |= _print_report(report, args.strict, sys.stdout)
    if io_failed:
        return EXIT_USAGE
    return EXIT_INVALID if failed else EXIT_OK


def _is_test_file(name: str) -> bool:
    return name.endswith((".test.yaml", ".test.yml"))


def _validate_test_file(name: str) -> Report:
    """A bot's test file (`NAME.test.yaml`, as `flowspec test` reads it) checked where specs
    are, so `flowspec validate specs/*.yaml` in CI covers the tests beside the specs."""
    from flowspec.errors import SpecInvalid
    from flowspec.scenario.load import load_test_file
    from flowspec.spec.compile import Report

    try:
        loaded = load_test_file(name)
    except SpecInvalid as exc:
        return Report(source=name, diagnostics=list(exc.diagnostics))
    return Report(source=name, graph=loaded.graph)


def _schema_document(args: argparse.Namespace) -> str | None:
    """The text `flowspec schema` produces for these arguments, or None after reporting why not."""
    if args.markdown:
        from flowspec.spec.reference import reference_markdown

        return reference_markdown()
    if args.spec is None:
        from flowspec.spec.schema import schema_text

        return schema_text()
    from flowspec.errors import SpecInvalid
    from flowspec.spec.docschema import document_schema_text
    from flowspec.spec.load import read

    try:
        doc = read(args.spec)
    except OSError as exc:
        print(f"flowspec schema: cannot read {args.spec}: {exc.strerror}", file=sys.stderr)
        return None
    except SpecInvalid as exc:
        # The previous specialised schema stays in place until the spec parses again.
        print(exc, file=sys.stderr)
        return None
    return document_schema_text(doc.data, Path(args.spec).name)


def cmd_schema(args: argparse.Namespace) -> int:
    if args.markdown and args.spec is not None:
        print("flowspec schema: give --markdown or --for, not both", file=sys.stderr)
        return EXIT_USAGE
    text = _schema_document(args)
    if text is None:
        return EXIT_USAGE if args.spec is not None and not Path(args.spec).is_file() \
            else EXIT_INVALID
    if args.check:
        try:
            current = Path(args.check).read_text(encoding="utf-8")
        except OSError as exc:
            print(f"flowspec schema: cannot read {args.check}: {exc.strerror}", file=sys.stderr)
            return EXIT_USAGE
        if current != text:
            how = "--markdown " if args.markdown else f"--for {args.spec} " if args.spec else ""
            print(f"flowspec schema: {args.check} is stale: regenerate it with `flowspec "
                  f"schema {how}--output {args.check}` (or tools/gen_schema.py)",
                  file=sys.stderr)
            return EXIT_INVALID
        print(f"{args.check} is up to date")
        return EXIT_OK
    if args.output:
        output = Path(args.output)
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(text, encoding="utf-8")
        print(f"wrote {args.output}")
        if args.spec is not None:
            import os

            relative = os.path.relpath(output.resolve(), Path(args.spec).resolve().parent)
            relative = relative if relative.startswith("..") else f"./{relative}"
            print(f"line 1 of {args.spec}: # yaml-language-server: $schema={relative}")
        return EXIT_OK
    sys.stdout.write(text)
    return EXIT_OK


def cmd_graph(args: argparse.Namespace) -> int:
    from flowspec.spec.compile import compile_file
    from flowspec.spec.render import to_dot, to_mermaid

    try:
        report = compile_file(args.spec)
    except OSError as exc:
        print(f"flowspec graph: cannot read {args.spec}: {exc.strerror}", file=sys.stderr)
        return EXIT_USAGE
    if report.graph is None:
        _print_report(report, False, sys.stderr)
        return EXIT_INVALID
    if args.flow:
        from flowspec.spec import render_flow

        if report.graph.spec.flow is None:
            print(f"flowspec graph: {args.spec} has no flow: section to draw; leave out "
                  "--flow to draw its nodes", file=sys.stderr)
            return EXIT_USAGE
        render = render_flow.to_dot if args.format == "dot" else render_flow.to_mermaid
    else:
        render = to_dot if args.format == "dot" else to_mermaid
    sys.stdout.write(render(report.graph))
    return EXIT_OK


def cmd_init(args: argparse.Namespace) -> int:
    from flowspec.spec.init import init_spec

    path = Path(args.path)
    name = args.name or path.stem.replace(".flowspec", "") or "my-bot"
    try:
        written = init_spec(path, name=name, template=args.template, schema=args.schema,
                            force=args.force)
    except FileExistsError as exc:
        print(f"flowspec init: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except OSError as exc:
        print(f"flowspec init: cannot write {exc.filename}: {exc.strerror}", file=sys.stderr)
        return EXIT_USAGE
    for file in written:
        print(f"wrote {file}")
    print(f"next: flowspec validate {path}")
    return EXIT_OK


def _admin_options(args: argparse.Namespace) -> object | None:
    """The admin API's options from the command line and environment, or None after saying why
    they cannot be used."""
    import os

    from flowspec.server.guard import read_token_file
    from flowspec.server.serving import AdminOptions

    if args.admin_token is not None:
        print("flowspec serve: --admin-token on the command line is visible to every user in "
              "`ps`; set FLOWSPEC_ADMIN_TOKEN or use --admin-token-file FILE", file=sys.stderr)
        return None
    if args.no_admin:
        return AdminOptions(enabled=False)
    if args.admin_token_file:
        try:
            token = read_token_file(args.admin_token_file)
        except (OSError, ValueError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            print(f"flowspec serve: cannot read {args.admin_token_file}: {reason}",
                  file=sys.stderr)
            return None
        return AdminOptions(token=token, token_source=args.admin_token_file,
                            allow_code=args.admin_allow_code)
    if os.environ.get("FLOWSPEC_ADMIN_TOKEN"):
        return AdminOptions(token=os.environ["FLOWSPEC_ADMIN_TOKEN"],
                            token_source="FLOWSPEC_ADMIN_TOKEN",
                            allow_code=args.admin_allow_code)
    return AdminOptions(allow_code=args.admin_allow_code)


def cmd_serve(args: argparse.Namespace) -> int:
    import asyncio

    from flowspec.server.commands import load_graphs
    from flowspec.server.logging import configure_logging
    from flowspec.server.serving import AdminOptions, ServeOptions, serve, serve_workers

    if args.workers < 1:
        print("flowspec serve: --workers must be at least 1", file=sys.stderr)
        return EXIT_USAGE
    admin = _admin_options(args)
    if not isinstance(admin, AdminOptions):
        return EXIT_USAGE
    graphs = load_graphs(args.specs, sys.stderr, "serve")
    if isinstance(graphs, int):
        return graphs
    options = ServeOptions(host=args.host, port=args.port, drain_timeout=args.drain_timeout,
                           admin=admin, watch=not args.no_watch,
                           allowed_hosts=tuple(args.allowed_hosts),
                           max_sessions=args.max_sessions, header_timeout=args.header_timeout,
                           store=args.store, reuse_port=args.reuse_port, quiet=args.worker,
                           tls_cert=args.tls_cert, tls_key=args.tls_key)
    if bool(args.tls_cert) != bool(args.tls_key):
        print("flowspec serve: give --tls-cert and --tls-key together", file=sys.stderr)
        return EXIT_USAGE
    if args.tls_cert:
        from flowspec.server.serving import tls_context

        try:
            tls_context(args.tls_cert, args.tls_key)
        except (OSError, ValueError) as exc:  # ssl.SSLError is an OSError
            print(f"flowspec serve: cannot use {args.tls_cert} / {args.tls_key}: {exc}",
                  file=sys.stderr)
            return EXIT_USAGE
    if args.workers > 1:
        if args.port == 0:
            print("flowspec serve: --workers needs a fixed --port", file=sys.stderr)
            return EXIT_USAGE
        configure_logging(args.log_format)
        return serve_workers(graphs, options, args.specs, args.workers)
    configure_logging(args.log_format)
    from flowspec.errors import FlowspecError

    try:
        return asyncio.run(serve(graphs, options))
    except FlowspecError as exc:
        print(f"flowspec serve: {exc}", file=sys.stderr)
        return EXIT_USAGE


def cmd_plan(args: argparse.Namespace) -> int:
    from flowspec.reload.commands import plan_files

    return plan_files(args.old, args.new, fmt=args.format, out=sys.stdout, err=sys.stderr)


def cmd_patch(args: argparse.Namespace) -> int:
    from flowspec.reload.commands import patch_command

    return patch_command(args, out=sys.stdout, err=sys.stderr)


def cmd_chat(args: argparse.Namespace) -> int:
    import asyncio

    from flowspec.server.commands import call_variables, chat, load_graphs
    from flowspec.server.logging import configure_cli_logging

    graphs = load_graphs([args.spec], sys.stderr, "chat")
    if isinstance(graphs, int):
        return graphs
    values = call_variables(graphs[0], args.variables, "chat")
    if isinstance(values, int):
        return values
    configure_cli_logging("chat")
    return asyncio.run(chat(graphs[0], variables=values))


def cmd_run(args: argparse.Namespace) -> int:
    import asyncio

    from flowspec.audio import read_wav
    from flowspec.server.commands import call_variables, load_graphs, run
    from flowspec.server.logging import configure_cli_logging

    graphs = load_graphs([args.spec], sys.stderr, "run")
    if isinstance(graphs, int):
        return graphs
    graph = graphs[0]
    entry = graph.nodes[graph.entry] if graph.entry else None
    source = args.input or getattr(entry, "input", None)
    if source is None:
        print("flowspec run: give the caller's audio with --in WAV (or an `input:` on the "
              "spec's transport.wav); for a conversation typed in the terminal use "
              "`flowspec chat`", file=sys.stderr)
        return EXIT_USAGE
    if graph.entry is None or not any("audio" in e.kinds for e in graph.edges_from(graph.entry)):
        kind = entry.type if entry is not None else "no entry transport"
        print(f"flowspec run: {graph.name}'s entry ({kind}) sends its model no audio, so a WAV "
              "cannot be its caller; use `flowspec chat`", file=sys.stderr)
        return EXIT_USAGE
    try:
        read_wav(source)
    except ValueError as exc:
        print(f"flowspec run: {exc}", file=sys.stderr)
        return EXIT_USAGE
    values = call_variables(graph, args.variables, "run")
    if isinstance(values, int):
        return values
    configure_cli_logging("run")
    return asyncio.run(run(graph, input_path=source, output_path=args.output, variables=values))


def cmd_nodes(args: argparse.Namespace) -> int:
    from flowspec.families.listing import node_listing, render_listing
    from flowspec.families.registry import default_families

    listing = node_listing(default_families())
    if args.format == "json":
        json.dump(listing, sys.stdout, indent=2, ensure_ascii=False)
        print()
    else:
        sys.stdout.write(render_listing(listing))
    return EXIT_OK


PLUGIN_COMMANDS = frozenset({"validate", "schema", "graph", "serve", "plan", "patch", "chat",
                             "run"})
"""Commands that read specs, so a node plugin that could not be loaded is worth a warning."""


def _warn_broken_plugins() -> None:
    from flowspec.families.registry import default_families

    for problem in default_families().problems:
        print(f"flowspec: warning: {problem}", file=sys.stderr)


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"{value} is not a port (0-65535)")
    return value


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} must be at least 1")
    return value


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not 0 < value <= 86_400:
        raise argparse.ArgumentTypeError(f"{text} must be above 0 and at most a day")
    return value


def _header_timeout() -> float:
    from flowspec.limits import HEADER_TIMEOUT_S

    return HEADER_TIMEOUT_S


def _max_sessions() -> int:
    from flowspec.limits import MAX_SESSIONS

    return MAX_SESSIONS


def _delegate(module: str) -> tuple[Callable[[argparse.ArgumentParser], None] | None,
                                     Callable[[argparse.Namespace], int] | None]:
    """Subcommands whose implementation lives beside their subsystem (configure, run)."""
    import importlib

    try:
        mod = importlib.import_module(module)
    except ImportError:
        return None, None
    return getattr(mod, "configure", None), getattr(mod, "run", None)


# Subcommands implemented beside their subsystem: (module, help). Their modules (and the heavy
# libraries behind them) are imported only when that subcommand runs.
DELEGATED = {
    "emulate": ("flowspec.emulator.cli", "run the local OpenAI emulator"),
    "test": ("flowspec.scenario.cli", "run a bot's test files (NAME.test.yaml) against the "
             "emulator"),
    "record": ("flowspec.scenario.record_cli", "one call, its provider traffic written to a "
               "recording a test can replay"),
}


def build_parser(argv: Sequence[str] = ()) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="flowspec",
        description="Declarative graph runtime for realtime voice and text bots.",
    )
    from flowspec import __version__

    parser.add_argument("--version", action="version", version=f"flowspec {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("validate", help="check specs: every error, located")
    p.add_argument("specs", nargs="+", metavar="SPEC")
    p.add_argument("--format", choices=["text", "json"], default="text")
    p.add_argument("--strict", action="store_true", help="treat warnings as errors")
    p.set_defaults(func=cmd_validate)

    p = sub.add_parser("schema", help="print or write the spec's JSON Schema or reference")
    p.add_argument("--output", "-o", metavar="FILE", help="write to FILE instead of stdout")
    p.add_argument("--check", metavar="FILE", help="exit 1 if FILE differs from the output")
    p.add_argument("--for", dest="spec", metavar="SPEC", help="specialise the schema to SPEC: "
                   "its node ids, ports and tool ids complete in edges and `tools:`")
    p.add_argument("--markdown", action="store_true",
                   help="the spec reference in Markdown (schemas/REFERENCE.md)")
    p.set_defaults(func=cmd_schema)

    p = sub.add_parser("graph", help="draw the compiled graph (Mermaid or DOT)")
    p.add_argument("spec", metavar="SPEC")
    p.add_argument("--format", choices=["mermaid", "dot"], default="mermaid")
    p.add_argument("--flow", action="store_true",
                   help="draw the spec's flow: as a state machine instead of its nodes")
    p.set_defaults(func=cmd_graph)

    p = sub.add_parser("init", help="write a starter spec with the schema modeline")
    p.add_argument("path", nargs="?", default="bot.flowspec.yaml", metavar="PATH")
    p.add_argument("--name", help="bot name (default: from the file name)")
    p.add_argument("--template", choices=["voice", "text"], default="voice")
    p.add_argument("--schema", help="schema path or URL for the modeline (default: write "
                   "flowspec.schema.json beside the spec)")
    p.add_argument("--force", action="store_true", help="overwrite an existing file")
    p.set_defaults(func=cmd_init)

    p = sub.add_parser("serve", help="serve specs: browser page, WebSocket/Twilio endpoints, "
                       "/healthz, /metrics")
    p.add_argument("specs", nargs="+", metavar="SPEC")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    p.add_argument("--port", type=_port, default=8080, help="port (default 8080; 0: a free one)")
    p.add_argument("--workers", type=int, default=1, help="worker processes sharing the port")
    p.add_argument("--log-format", choices=["text", "json"], default="text")
    p.add_argument("--drain-timeout", type=float, default=30.0, metavar="SECONDS",
                   help="on SIGINT/SIGTERM, how long running calls may take to finish")
    p.add_argument("--reuse-port", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--store", metavar="URL", help="keep the specs in a store shared by "
                   "replicas (redis://HOST:PORT/DB): admin changes reach every replica")
    p.add_argument("--admin-token", help=argparse.SUPPRESS)
    p.add_argument("--admin-token-file", metavar="FILE", help="read the admin API's bearer "
                   "token from FILE (default: FLOWSPEC_ADMIN_TOKEN, else a new token per start, "
                   "printed once and written to a file only you can read)")
    p.add_argument("--no-admin", action="store_true", help="turn the admin API off")
    p.add_argument("--admin-allow-code", action="store_true", help="let the admin API change "
                   "code-bearing fields (handlers, URLs, file paths)")
    p.add_argument("--allowed-host", dest="allowed_hosts", action="append", default=[],
                   metavar="NAME", help="a host name this server answers for besides IP "
                   "addresses and localhost (`.example.com` for every name under it, `*` for "
                   "any); repeatable")
    p.add_argument("--max-sessions", type=_positive, default=_max_sessions(), metavar="N",
                   help="most live sessions this process holds (default %(default)s)")
    p.add_argument("--tls-cert", metavar="PEM", help="serve https/wss with this certificate "
                   "chain (with --tls-key): browsers give the page a microphone only over "
                   "https or on localhost")
    p.add_argument("--tls-key", metavar="PEM", help="the private key of --tls-cert")
    p.add_argument("--header-timeout", type=_seconds, default=_header_timeout(),
                   metavar="SECONDS", help="how long a connection may take to send its request "
                   "headers (default %(default)s)")
    p.add_argument("--no-watch", action="store_true",
                   help="do not reload the spec files when they are saved")
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("plan", help="what changing OLD into NEW does to a running bot, with "
                       "the exact session.update payloads")
    p.add_argument("old", metavar="OLD")
    p.add_argument("new", metavar="NEW")
    p.add_argument("--format", choices=["text", "json"], default="text")
    p.set_defaults(func=cmd_plan)

    p = sub.add_parser("patch", help="change a spec file in place (comments kept) or a "
                       "running server's spec")
    p.add_argument("file", nargs="?", metavar="FILE")
    p.add_argument("--set", dest="assignments", action="append", default=[],
                   metavar="/POINTER=VALUE", help="set a value: the text as given where the "
                   "field takes a string, else JSON or a YAML flow value; repeatable")
    p.add_argument("--set-json", dest="json_assignments", action="append", default=[],
                   metavar="/POINTER=JSON", help="set a value given as JSON; repeatable")
    p.add_argument("--json-patch", metavar="PATCH", help="an RFC 6902 patch: JSON text or "
                   "@file")
    p.add_argument("--merge-patch", metavar="PATCH", help="an RFC 7396 merge patch: JSON text "
                   "or @file")
    p.add_argument("--server", metavar="URL", help="PATCH the admin API of a running server "
                   "instead of a file")
    p.add_argument("--spec", metavar="NAME", help="with --server: which served spec")
    p.add_argument("--token-file", metavar="FILE", help="with --server: a file holding the "
                   "admin token (default: FLOWSPEC_ADMIN_TOKEN, else the token file the server "
                   "on that port wrote)")
    p.add_argument("--if-match", metavar="VERSION", help="with --server: apply only to this "
                   "version")
    p.add_argument("--format", choices=["text", "json"], default="text", help="with --server: "
                   "the server's answer as JSON")
    p.set_defaults(func=cmd_patch)

    p = sub.add_parser("chat", help="talk to a text bot in the terminal")
    p.add_argument("spec", metavar="SPEC")
    _var_option(p)
    p.set_defaults(func=cmd_chat)

    p = sub.add_parser("nodes", help="every node type: its family, package, ports and live "
                       "reload path; plugins that could not be loaded")
    p.add_argument("--format", choices=["text", "json"], default="text")
    p.set_defaults(func=cmd_nodes)

    p = sub.add_parser("run", help="one batch session: a WAV file in, the reply's WAV out")
    p.add_argument("spec", metavar="SPEC")
    p.add_argument("--in", dest="input", metavar="WAV", help="input WAV file")
    p.add_argument("--out", dest="output", metavar="WAV", help="output WAV file")
    _var_option(p)
    p.set_defaults(func=cmd_run)

    wanted = next((a for a in argv if not a.startswith("-")), None)
    for name, (module, text) in DELEGATED.items():
        p = sub.add_parser(name, help=text)
        if name != wanted:
            continue
        configure, run = _delegate(module)
        if configure is None or run is None:
            p.set_defaults(func=lambda _args, n=name: _unavailable(n))
            continue
        configure(p)
        p.set_defaults(func=run)
    return parser


def _var_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--var", dest="variables", action="append", default=[],
                   metavar="NAME=VALUE", help="a value for one of the spec's `variables:` "
                   "(read as its type, checked before the call starts); repeatable")


def _unavailable(name: str) -> int:
    print(f"flowspec {name}: this installation does not include it", file=sys.stderr)
    return EXIT_USAGE


def main(argv: Sequence[str] | None = None) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(arguments)
    args = parser.parse_args(arguments)
    if not getattr(args, "func", None):
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    if args.command in PLUGIN_COMMANDS and not getattr(args, "worker", False):
        _warn_broken_plugins()
    try:
        code: int = args.func(args)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # `flowspec validate specs/*.yaml | head`: the reader has what it wanted. Point stdout
        # at /dev/null so the interpreter's final flush does not fail a second time.
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_BROKEN_PIPE
    return code


if __name__ == "__main__":
    sys.exit(main())
